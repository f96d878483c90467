// nextToken paging (node/aws/paging.h): pages in key order, tokens bound to the operation and
// the request's other fields, anything else refused as InvalidNextTokenException, and items
// added between two calls neither repeat nor skip the items that stay.
#include "node/aws/paging.h"

#include <gtest/gtest.h>

namespace meshdeploy::aws {
namespace {

using nlohmann::json;

std::vector<page_item> names(std::initializer_list<const char*> list) {
  std::vector<page_item> out;
  for (const char* n : list) out.push_back({n, n});
  return out;
}

TEST(PagingTest, PagesFollowTheTokenToTheEnd) {
  const auto items = names({"e", "a", "d", "b", "c"});
  json req = {{"applicationName", "web"}};
  std::vector<std::string> seen;
  int pages = 0;
  for (; pages < 10; ++pages) {
    auto p = paginate("ListX", req, items, 2);
    ASSERT_TRUE(p) << p.error().message;
    for (const auto& v : p.value().items) seen.push_back(v.get<std::string>());
    EXPECT_LE(p.value().items.size(), 2u);
    if (p.value().next_token.empty()) break;
    req["nextToken"] = p.value().next_token;
  }
  EXPECT_EQ(pages, 2);  // three pages: 2 + 2 + 1
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d", "e"}));

  // Exactly one full page: no token.
  auto one = paginate("ListX", json::object(), names({"a", "b"}), 2);
  ASSERT_TRUE(one);
  EXPECT_TRUE(one.value().next_token.empty());
  auto none = paginate("ListX", json::object(), {}, 2);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none.value().items.empty());
}

TEST(PagingTest, ChangesBetweenCallsNeitherRepeatNorSkipWhatStays) {
  auto first = paginate("ListX", json::object(), names({"b", "d", "f"}), 2);
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value().items, json::array({"b", "d"}));
  // "a" (before the position) and "c" (before it) are added, "d" is removed, "e" is added.
  auto next = paginate("ListX", {{"nextToken", first.value().next_token}},
                       names({"a", "b", "c", "e", "f"}), 2);
  ASSERT_TRUE(next);
  EXPECT_EQ(next.value().items, json::array({"e", "f"}));
  EXPECT_TRUE(next.value().next_token.empty());
}

TEST(PagingTest, ForeignOrDamagedTokensAreRefused) {
  const json req = {{"applicationName", "web"}};
  const std::string good = next_token("ListX", req, "b");
  auto refused = [&](const std::string& op, json r) {
    auto p = paginate(op, r, names({"a", "b", "c"}), 2);
    return !p && p.error().type == "InvalidNextTokenException";
  };
  auto with = [&](json r, const std::string& token) {
    r["nextToken"] = token;
    return r;
  };
  auto ok = paginate("ListX", with(req, good), names({"a", "b", "c"}), 2);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok.value().items, json::array({"c"}));

  EXPECT_TRUE(refused("ListY", with(req, good)));                             // other operation
  EXPECT_TRUE(refused("ListX", with({{"applicationName", "api"}}, good)));    // other fields
  EXPECT_TRUE(refused("ListX", with(req, "garbage")));                        // not a token
  EXPECT_TRUE(refused("ListX", with(req, "")));                               // empty
  EXPECT_TRUE(refused("ListX", with(req, good.substr(0, good.size() - 1))));  // cut
  EXPECT_TRUE(refused("ListX", with(req, "1.63." + good.substr(good.rfind('.') + 1))));  // moved
  EXPECT_TRUE(refused("ListX", with(req, "1.6." + good.substr(good.rfind('.') + 1))));   // odd hex
  EXPECT_TRUE(refused("ListX", with(req, "1.zz." + good.substr(good.rfind('.') + 1))));  // not hex
  EXPECT_TRUE(refused("ListX", with(req, good + std::string(3000, '0'))));               // too long
  std::string flipped = good;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_TRUE(refused("ListX", with(req, flipped)));

  auto not_string = paginate("ListX", {{"nextToken", 7}}, names({"a"}), 2);
  ASSERT_FALSE(not_string);
  EXPECT_EQ(not_string.error().type, "ValidationException");
  // null is "no token".
  EXPECT_TRUE(paginate("ListX", {{"nextToken", nullptr}}, names({"a"}), 2));
}

TEST(PagingTest, NewestFirstKeysOrderByTimeDescendingThenId) {
  EXPECT_LT(newest_first_key(2000, "d-b"), newest_first_key(1000, "d-a"));
  EXPECT_LT(newest_first_key(1000, "d-a"), newest_first_key(1000, "d-b"));
  EXPECT_LT(newest_first_key(1000, "d-z"), newest_first_key(-5, "d-a"));  // bad times last
}

}  // namespace
}  // namespace meshdeploy::aws

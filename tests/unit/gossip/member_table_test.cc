#include "gossip/member_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace meshdeploy::gossip {
namespace {

member_table::entry make(const std::string& name, std::uint64_t inc = 0) {
  member_table::entry e;
  e.meta = std::make_shared<const node_meta>(node_meta{name, address{"10.0.0.1", 7946}, {}, 1, 1});
  e.inc = incarnation(inc);
  return e;
}

TEST(MemberTableTest, FindsWhatWasInsertedAndNothingElse) {
  member_table t;
  EXPECT_EQ(t.find("a"), member_table::none);
  const auto a = t.insert(make("a", 3));
  const auto b = t.insert(make("b", 4));
  EXPECT_NE(a, b);
  EXPECT_EQ(t.find("a"), a);
  EXPECT_EQ(t.find("b"), b);
  EXPECT_EQ(t.at(a).inc, incarnation(3));
  EXPECT_EQ(t.find("c"), member_table::none);
  EXPECT_EQ(t.size(), 2u);
}

TEST(MemberTableTest, ErasedSlotIsReusedWithANewGeneration) {
  member_table t;
  const auto a = t.insert(make("a"));
  const auto gen = t.at(a).gen;
  t.erase(a);
  EXPECT_FALSE(t.used(a));
  EXPECT_EQ(t.find("a"), member_table::none);
  const auto b = t.insert(make("b"));
  EXPECT_EQ(b, a);
  EXPECT_NE(t.at(b).gen, gen);
  EXPECT_EQ(t.find("b"), b);
}

// Against std::map as a model, through growth and many erasures (backward-shift deletion must
// keep every other name findable).
TEST(MemberTableTest, AgreesWithAMapUnderRandomInsertsAndErases) {
  member_table t;
  std::map<std::string, member_table::slot_id> model;
  std::mt19937_64 rng(7);
  for (int step = 0; step < 20000; ++step) {
    const std::string name = "n" + std::to_string(rng() % 3000);
    auto it = model.find(name);
    if (it == model.end()) {
      model.emplace(name, t.insert(make(name)));
    } else if (rng() % 2 == 0) {
      t.erase(it->second);
      model.erase(it);
    }
    if (step % 997 == 0) {
      for (const auto& [n, id] : model) {
        ASSERT_EQ(t.find(n), id) << n << " at step " << step;
        ASSERT_EQ(t.at(id).meta->name, n);
      }
    }
  }
  EXPECT_EQ(t.size(), model.size());
  std::size_t used = 0;
  for (member_table::slot_id id = 0; id < t.slot_limit(); ++id) used += t.used(id);
  EXPECT_EQ(used, model.size());
  for (int i = 0; i < 3000; ++i) {
    const std::string name = "n" + std::to_string(i);
    EXPECT_EQ(t.find(name) != member_table::none, model.count(name) == 1) << name;
  }
}

TEST(MemberTableTest, ReferencesStayValidWhileMembersAreAdded) {
  member_table t;
  const auto a = t.insert(make("a", 9));
  const member_table::entry* p = &t.at(a);
  for (int i = 0; i < 5000; ++i) t.insert(make("m" + std::to_string(i)));
  EXPECT_EQ(p, &t.at(a));
  EXPECT_EQ(p->inc, incarnation(9));
}

}  // namespace
}  // namespace meshdeploy::gossip

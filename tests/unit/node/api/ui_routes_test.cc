// The web console's routes (node/api/ui_routes.h) as a pure request -> response function: the
// embedded files, their security and cache headers, revalidation, and what is not served.
#include "node/api/ui_routes.h"

#include "node/api/ui_assets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>

namespace meshdeploy::api {
namespace {

std::optional<api_response> get(const std::string& target, const std::string& method = "GET",
                                const std::string& if_none_match = "") {
  api_request req;
  req.method = method;
  req.target = target;
  if (!if_none_match.empty()) req.headers.emplace_back("if-none-match", if_none_match);
  return ui_routes()(req);
}

std::string header(const api_response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

const ui_asset* asset(std::string_view name) {
  const auto all = ui_assets();
  const auto it =
      std::find_if(all.begin(), all.end(), [&](const ui_asset& a) { return a.name == name; });
  return it == all.end() ? nullptr : &*it;
}

TEST(UiRoutesTest, ServesTheIndexWithASelfOnlyPolicy) {
  auto r = get("/ui/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(r->content_type, "text/html; charset=utf-8");
  EXPECT_NE(r->body.find("<script src=\"console.js\" defer></script>"), std::string::npos);
  EXPECT_EQ(header(*r, "Content-Security-Policy").rfind("default-src 'self';", 0), 0u);
  EXPECT_EQ(header(*r, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header(*r, "Cache-Control"), "no-cache");
  EXPECT_EQ(header(*r, "ETag"), asset("index.html")->etag);
  auto same = get("/ui/index.html?x=<b>");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->body, r->body);
}

TEST(UiRoutesTest, EveryEmbeddedFileIsServedAsItsBytesWithItsType) {
  const auto all = ui_assets();
  ASSERT_GE(all.size(), 4u);  // index.html, console.js, console.css, favicon.svg
  for (const auto& a : all) {
    auto r = get("/ui/" + std::string(a.name));
    ASSERT_TRUE(r) << a.name;
    EXPECT_EQ(r->status, 200u) << a.name;
    EXPECT_EQ(r->body, a.body) << a.name;
    EXPECT_FALSE(r->body.empty()) << a.name;
    EXPECT_EQ(r->content_type, a.content_type) << a.name;
    EXPECT_EQ(a.etag.size(), 34u) << a.name;  // 32 hex digits in quotes
  }
  EXPECT_EQ(asset("console.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(asset("console.css")->content_type, "text/css; charset=utf-8");
  EXPECT_NE(asset("index.html")->etag, asset("console.js")->etag);
}

TEST(UiRoutesTest, AMatchingETagAnswers304WithoutABody) {
  const std::string etag(asset("console.js")->etag);
  for (const std::string& inm : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    auto r = get("/ui/console.js", "GET", inm);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 304u) << inm;
    EXPECT_TRUE(r->body.empty()) << inm;
    EXPECT_EQ(header(*r, "ETag"), etag);
  }
  auto stale = get("/ui/console.js", "GET", "\"0123\"");
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 200u);
  EXPECT_EQ(stale->body, asset("console.js")->body);
}

TEST(UiRoutesTest, UnknownNamesAndPathsOutsideTheListAre404) {
  for (const char* target :
       {"/ui/nope.html", "/ui/../index.html", "/ui/%2e%2e/index.html", "/ui/console.js/",
        "/ui//index.html", "/ui/embed.cmake", "/ui/ui/index.html", "/ui/INDEX.HTML"}) {
    auto r = get(target);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 404u) << target;
    EXPECT_EQ(r->content_type, "text/plain; charset=utf-8") << target;
    EXPECT_FALSE(header(*r, "Content-Security-Policy").empty()) << target;
  }
}

TEST(UiRoutesTest, TheConsoleIsReadOnly) {
  for (const char* m : {"POST", "PUT", "DELETE", "HEAD"}) {
    auto r = get("/ui/", m);
    ASSERT_TRUE(r) << m;
    EXPECT_EQ(r->status, 405u) << m;
    EXPECT_EQ(header(*r, "Allow"), "GET") << m;
  }
}

TEST(UiRoutesTest, RedirectsToTheConsoleAndLeavesTheApiAlone) {
  auto bare = get("/ui");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->status, 301u);
  EXPECT_EQ(header(*bare, "Location"), "/ui/");
  auto root = get("/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 302u);
  EXPECT_EQ(header(*root, "Location"), "/ui/");
  EXPECT_FALSE(get("/", "POST"));
  EXPECT_FALSE(get("/v1/deployments"));
  EXPECT_FALSE(get("/uix"));
  EXPECT_FALSE(get("/metrics"));
}

// The script builds the page from API data with text nodes only: none of the calls that parse
// markup may appear in it, and the page has no inline script or style for the policy to allow.
TEST(UiRoutesTest, TheScriptNeverParsesDataAsMarkup) {
  const std::string js(asset("console.js")->body);
  for (const char* bad : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                          "new Function", "setTimeout('", "setTimeout(\""}) {
    EXPECT_EQ(js.find(bad), std::string::npos) << bad;
  }
  const std::string html(asset("index.html")->body);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("<style"), std::string::npos);
  EXPECT_EQ(html.find("style="), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

}  // namespace
}  // namespace meshdeploy::api

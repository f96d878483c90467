#include "node/api/request_metrics.h"

#include "tests/support/prometheus_text.h"

#include <gtest/gtest.h>

namespace meshdeploy::api {
namespace {

TEST(RoutePatternTest, EveryRouteMapsToItsPatternAndTheRestToOther) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/", "/"},
      {"/metrics", "/metrics"},
      {"/ui", "/ui"},
      {"/ui/", "/ui/"},
      {"/ui/app.js", "/ui/{file...}"},
      {"/v1/health", "/v1/health"},
      {"/v1/apps", "/v1/apps"},
      {"/v1/apps/web", "/v1/apps/{name}"},
      {"/v1/groups/web/prod", "/v1/groups/{app}/{name}"},
      {"/v1/groups/web/prod/plan", "/v1/groups/{app}/{name}/plan"},
      {"/v1/deployments", "/v1/deployments"},
      {"/v1/deployments/d-ABC", "/v1/deployments/{id}"},
      {"/v1/deployments/d-ABC/logs", "/v1/deployments/{id}/logs"},
      {"/v1/records/group/web/prod", "/v1/records/{type}/{key...}"},
      {"/v1/records/intent", "/v1/records/{type}"},
      {"/v1/keys/install", "/v1/keys/{operation}"},
      {"/v1/audit/verify", "/v1/audit/verify"},
      {"/v1/deployments/d-ABC/nope", "other"},
      {"/v1/apps/", "other"},
      {"/v2/apps", "other"},
      {"/etc/passwd", "other"},
      {"", "other"},
      {"//", "other"},
  };
  for (const auto& [path, pattern] : cases) EXPECT_EQ(route_pattern(path), pattern) << path;
}

TEST(RequestMetricsTest, LatencyByPatternMethodAndClassWithLongPollsApart) {
  request_metrics m;
  m.observe("GET", "/v1/deployments/d-1?waitVersion=3", 200, 0.002);
  m.observe("GET", "/v1/deployments/d-2", 200, 0.004);
  m.observe("GET", "/v1/deployments/d-3", 404, 0.0005);
  m.observe("POST", "/v1/records", 201, 0.03);
  m.observe("BREW", "/coffee", 421, 0.0001);
  m.observe_long_poll();
  m.observe_long_poll();
  node::metrics::exposition e;
  m.write(e);
  const auto p = test::parse_prometheus_text(e.text());
  EXPECT_TRUE(p.problems.empty()) << e.text() << ::testing::PrintToString(p.problems);
  const std::string h = "meshdeploy_api_request_duration_seconds";
  EXPECT_EQ(
      p.sum(h + "_count", {{"route", "/v1/deployments/{id}"}, {"method", "GET"}, {"code", "2xx"}}),
      2);
  EXPECT_EQ(p.sum(h + "_count", {{"route", "/v1/deployments/{id}"}, {"code", "4xx"}}), 1);
  EXPECT_EQ(p.sum(h + "_count", {{"route", "other"}, {"method", "other"}, {"code", "4xx"}}), 1);
  EXPECT_EQ(p.sum(h + "_bucket", {{"route", "/v1/records"}, {"le", "0.025"}}), 0);
  EXPECT_EQ(p.sum(h + "_bucket", {{"route", "/v1/records"}, {"le", "0.05"}}), 1);
  EXPECT_EQ(p.sum(h + "_count"), 5);
  EXPECT_EQ(p.sum("meshdeploy_api_long_polls_total"), 2);
  // No raw ids in any label.
  for (const auto& s : p.samples) {
    for (const auto& [k, v] : s.labels) EXPECT_EQ(v.find("d-"), std::string::npos) << v;
  }
}

}  // namespace
}  // namespace meshdeploy::api

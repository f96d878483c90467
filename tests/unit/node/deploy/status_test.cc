#include "node/deploy/status.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace meshdeploy::deploy {
namespace {

deployment_record sample() {
  deployment_record d;
  d.id = "d-ABCDEFGH1";
  d.application = "web";
  d.group = "prod";
  d.group_id = "g-1";
  d.revision = std::string(64, 'a');
  d.bundle_format = "tar";
  d.config = "OneAtATime";
  d.creator = "alice";
  d.create_time = 1'700'000'000'123;
  d.complete_time = 1'700'000'005'456;
  d.status = deployment_status::failed;
  d.error = error_information{"HEALTH_CONSTRAINTS", "host h1 failed"};
  d.version = 7;
  host_progress h{"h1", host_status::failed, {}};
  h.events.push_back(
      {"ApplicationStop", host_status::succeeded, 1'700'000'000'200, 1'700'000'000'300, {}});
  h.events.push_back({"ValidateService", host_status::failed, 1'700'000'001'000, 1'700'000'002'000,
                      diagnostics{"ScriptFailed", "scripts/v.sh", "exit 3", "tail\n"}});
  h.events.push_back({"AfterAllowTraffic", host_status::skipped, 0, 0, {}});
  d.hosts.push_back(h);
  return d;
}

TEST(StatusTest, JsonHasTheDocumentedShape) {
  const auto j = to_json(sample());
  for (const char* key :
       {"deploymentId", "application", "deploymentGroup", "revision", "deploymentConfig", "status",
        "creator", "createTime", "completeTime", "overview", "errorInformation", "hosts"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["status"], "Failed");
  EXPECT_EQ(j["createTime"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(j["overview"]["Failed"], 1);
  EXPECT_EQ(j["overview"]["Pending"], 0);
  const auto& ev = j["hosts"][0]["events"][1];
  EXPECT_EQ(ev["diagnostics"]["errorCode"], "ScriptFailed");
  EXPECT_EQ(ev["diagnostics"]["logTail"], "tail\n");
  EXPECT_TRUE(j["hosts"][0]["events"][2]["startTime"].is_null());
}

TEST(StatusTest, JsonRoundTripsExactly) {
  const auto d = sample();
  auto back = deployment_from_json(to_json(d));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(to_json(back.value()), to_json(d));
}

TEST(StatusTest, MalformedDocumentIsAnErrorNotACrash) {
  auto j = to_json(sample());
  j["status"] = 5;
  EXPECT_FALSE(deployment_from_json(j));
  j = to_json(sample());
  j["createTime"] = "yesterday";
  auto r = deployment_from_json(j);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("createTime"), std::string::npos);
  EXPECT_FALSE(deployment_from_json(nlohmann::json::array()));
  j = to_json(sample());
  j["hosts"] = nlohmann::json::array({1, 2});
  EXPECT_FALSE(deployment_from_json(j));
}

TEST(StatusTest, StatusNamesParseBack) {
  for (auto s :
       {deployment_status::created, deployment_status::queued, deployment_status::in_progress,
        deployment_status::succeeded, deployment_status::failed, deployment_status::stopped}) {
    EXPECT_EQ(parse_deployment_status(to_string(s)), s);
  }
  EXPECT_EQ(to_string(host_status::in_progress), "InProgress");
  EXPECT_FALSE(parse_host_status("Done"));
  EXPECT_TRUE(is_terminal(host_status::skipped));
  EXPECT_FALSE(is_terminal(deployment_status::queued));
}

}  // namespace
}  // namespace meshdeploy::deploy

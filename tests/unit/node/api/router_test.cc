// The API router against a real registry in a real RocksDB (no sockets).
#include "node/api/router.h"

#include "node/agent/executor.h"
#include "node/agent/host_state.h"
#include "node/agent/journal.h"
#include "storage/db.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace meshdeploy::api {
namespace {

using nlohmann::json;

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    auto families = deploy::registry::column_families();
    families.push_back(agent::journal::column_family);
    families.push_back(agent::host_state_store::column_family);
    db_ = storage::db::open({dir_ / "db", families}).value();
    reg_ = std::make_unique<deploy::registry>(*db_, dir_ / "revisions");
    agent::agent_options o;
    o.data_dir = dir_.path();
    o.install_root = dir_ / "root";
    exec_ = std::make_unique<agent::executor>(*db_, o);
    deployer_ = std::make_unique<deploy::local_deployer>(
        *reg_, *exec_, deploy::host_identity{"h1", {{"role", "web"}}});
    router_ = std::make_unique<router>(*reg_, *deployer_, node_info{"h1", "0.1.0", {}, "/"});
  }
  api_response call(const std::string& method, const std::string& target,
                    const json& body = nullptr) {
    api_request r{method, target, body.is_null() ? std::string() : body.dump(), {}};
    return router_->handle(r);
  }
  static json body(const api_response& r) { return json::parse(r.body); }

  test::temp_dir dir_{"meshdeploy-router"};
  std::unique_ptr<storage::db> db_;
  std::unique_ptr<deploy::registry> reg_;
  std::unique_ptr<agent::executor> exec_;
  std::unique_ptr<deploy::local_deployer> deployer_;
  std::unique_ptr<router> router_;
};

TEST_F(RouterTest, ParseTargetDecodesQuery) {
  auto t = parse_target("/v1/groups?app=my%20app&x=&y=a+b");
  EXPECT_EQ(t.path, "/v1/groups");
  EXPECT_EQ(t.query["app"], "my app");
  EXPECT_EQ(t.query["x"], "");
  EXPECT_EQ(t.query["y"], "a b");
  EXPECT_EQ(parse_target("/v1/x?bad=%zz").query["bad"], "%zz");
}

TEST_F(RouterTest, AppsCanBeCreatedListedAndDuplicatesConflict) {
  EXPECT_EQ(call("POST", "/v1/apps", {{"name", "web"}}).status, 201u);
  auto dup = call("POST", "/v1/apps", {{"name", "web"}});
  EXPECT_EQ(dup.status, 409u);
  EXPECT_EQ(body(dup)["error"]["code"], "AlreadyExists");
  auto list = call("GET", "/v1/apps");
  ASSERT_EQ(list.status, 200u);
  EXPECT_EQ(body(list)["applications"][0]["name"], "web");
}

TEST_F(RouterTest, BadBodiesGetClearErrors) {
  auto r = call("POST", "/v1/apps", "not an object");
  EXPECT_EQ(r.status, 400u);
  r = router_->handle({"POST", "/v1/apps", "{broken", {}});
  EXPECT_EQ(r.status, 400u);
  r = call("POST", "/v1/apps", {{"name", 5}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(body(r)["error"]["message"].get<std::string>().find("'name'"), std::string::npos);
  r = call("POST", "/v1/apps", {{"name", "has space"}});
  EXPECT_EQ(r.status, 400u);
  r = call("POST", "/v1/groups",
           {{"application", "nope"}, {"name", "g"}, {"tagSets", json::array()}});
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(call("GET", "/v2/anything").status, 404u);
  EXPECT_EQ(call("PATCH", "/v1/apps").status, 404u);
}

TEST_F(RouterTest, GroupNeedsTagsAndAKnownConfig) {
  ASSERT_EQ(call("POST", "/v1/apps", {{"name", "web"}}).status, 201u);
  json tags = json::array({json::array({{{"key", "role"}, {"value", "web"}}})});
  EXPECT_EQ(call("POST", "/v1/groups",
                 {{"application", "web"}, {"name", "g"}, {"tagSets", json::array()}})
                .status,
            400u);
  EXPECT_EQ(
      call("POST", "/v1/groups",
           {{"application", "web"}, {"name", "g"}, {"tagSets", tags}, {"deploymentConfig", "Nope"}})
          .status,
      404u);
  auto ok = call("POST", "/v1/groups",
                 {{"application", "web"},
                  {"name", "g"},
                  {"tagSets", tags},
                  {"deploymentConfig", "CodeDeployDefault.AllAtOnce"}});
  ASSERT_EQ(ok.status, 201u) << ok.body;
  EXPECT_EQ(body(ok)["deploymentConfig"], "AllAtOnce");
  EXPECT_EQ(body(ok)["id"].get<std::string>().size(), 36u);
}

TEST_F(RouterTest, ConfigsIncludeBuiltinsAndCustom) {
  EXPECT_EQ(call("POST", "/v1/configs", {{"name", "Most"}, {"minHealthy", "75%"}}).status, 201u);
  EXPECT_EQ(call("POST", "/v1/configs", {{"name", "Bad"}, {"minHealthy", "lots"}}).status, 400u);
  auto list = body(call("GET", "/v1/configs"))["deploymentConfigs"];
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0]["name"], "OneAtATime");
  EXPECT_EQ(list[3]["minimumHealthyHosts"]["type"], "FLEET_PERCENT");
  EXPECT_EQ(list[3]["minimumHealthyHosts"]["value"], 75);
}

TEST_F(RouterTest, DeploymentOfUnknownRevisionIsRejected) {
  ASSERT_EQ(call("POST", "/v1/apps", {{"name", "web"}}).status, 201u);
  json tags = json::array({json::array({{{"key", "role"}, {"value", "web"}}})});
  ASSERT_EQ(
      call("POST", "/v1/groups", {{"application", "web"}, {"name", "g"}, {"tagSets", tags}}).status,
      201u);
  auto r = call("POST", "/v1/deployments",
                {{"application", "web"}, {"deploymentGroup", "g"}, {"revision", "abc"}});
  EXPECT_EQ(r.status, 400u);
  r = call("POST", "/v1/deployments",
           {{"application", "web"}, {"deploymentGroup", "g"}, {"revision", std::string(64, 'a')}});
  EXPECT_EQ(r.status, 404u);
  r = call("POST", "/v1/deployments", {{"application", "web"}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(body(r)["error"]["message"].get<std::string>().find("deploymentGroup"),
            std::string::npos);
  EXPECT_EQ(call("GET", "/v1/deployments/d-NOPE").status, 404u);
}

}  // namespace
}  // namespace meshdeploy::api

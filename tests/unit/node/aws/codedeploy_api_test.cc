// The CodeDeploy JSON 1.1 front end against a real registry, record store, verifier and the
// native record routes in a real RocksDB (no sockets): requests are SigV4-signed as the aws CLI
// signs them, and writes go through the same checks as the native API's.
#include "node/aws/codedeploy_api.h"

#include "node/api/record_routes.h"
#include "node/aws/revision_source.h"
#include "node/deploy/errc.h"
#include "node/deploy/rollout/planning.h"
#include "node/security/verifier.h"
#include "tests/support/local_node.h"
#include "tests/support/signed_records.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/node/aws/aws_test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>

namespace meshdeploy::aws {
namespace {

using nlohmann::json;

constexpr const char* key_id = "MDAKTESTTESTTESTTEST";
constexpr const char* secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXM=";
constexpr const char* reader_id = "MDAKREADREADREADREAD";
constexpr const char* reader_secret = "cmVhZGVyLXNlY3JldA==";

class CodeDeployApiTest : public ::testing::Test {
 protected:
  // `offload`: an S3 API (objects_) and an offload that queues its work in queued_.
  explicit CodeDeployApiTest(std::size_t page_size = default_page_size, bool offload = false) {
    router_->add_route_handler(api::make_record_routes(api::record_routes_context{
        *reg_, *store_, [this](const std::string& id) { return refreshed(id); },
        [this](const records::record& r) -> result<records::payload> {
          MESH_CHECK(security::check_submission(r, *store_, signers_.admin.pub, test::wall_ms()));
          return records::decode_payload(r.type, r.payload);
        },
        [this](const records::record& r) -> result<bool> {
          if (auto v = security::verify(r, *store_, signers_.admin.pub); !v) return v.error();
          MESH_TRY(auto o, store_->put(r));
          return o != records::put_outcome::stale;
        },
        [] {
          return std::vector<api::live_host>{{"h1", {{"role", "web"}}},
                                             {"h2", {{"role", "web"}, {"zone", "b"}}},
                                             {"h3", {{"role", "db"}}}};
        },
        [](const std::string& app, const std::string& group, std::vector<std::string> hosts,
           const std::string& id) {
          const deploy::rollout::record_set none(app, group);
          return deploy::rollout::plan_targets(none, deploy::rollout::admit(none), std::move(hosts),
                                               id);
        }}));
    // Two access keys: one acting with every right, one that may only read.
    keys_.add(access_key{key_id, secret, "ci", writer_});
    keys_.add(access_key{reader_id, reader_secret, "auditor", reader_});
    EXPECT_EQ(submit(signers_.grant({"*:*"}, 1, &writer_)), 201u);
    EXPECT_EQ(submit(signers_.grant({"read:*"}, 1, &reader_)), 201u);
    codedeploy_context ctx{
        *reg_,        *store_,
        keys_,        offload ? &objects_ : nullptr,
        dir_ / "aws", [this](const api::api_request& r) { return router_->handle(r); },
        "h1",         [] { return test::wall_ms(); },
        page_size};
    if (offload) {
      ctx.offload = [this](std::function<void()> work, std::function<void()> then) {
        queued_.emplace_back(std::move(work), std::move(then));
      };
    }
    router_->add_route_handler(make_codedeploy_routes(std::move(ctx), false));
  }

  unsigned submit(const records::record& r) {
    api::api_request req{"POST", "/v1/records", json{{"record", test::hex_of(r)}}.dump(), {}, {}};
    return router_->handle(req).status;
  }

  // What the mesh deployer does when an intent or stop is published: a status document.
  result<deploy::deployment_record> refreshed(const std::string& id) {
    if (auto d = reg_->get_deployment(id)) {
      auto stop = store_->get(records::record_type::stop, id);
      if (stop && stop.value()) {
        d.value().status = deploy::deployment_status::stopped;
        MESH_CHECK(reg_->put_deployment(d.value()));
      }
      return d;
    }
    auto in = store_->get(records::record_type::intent, id);
    if (!in || !in.value()) return make_error(deploy::errc::not_found, "no intent " + id);
    auto p = records::decode_payload(records::record_type::intent, in.value()->payload);
    const auto& intent = std::get<records::intent_payload>(p.value());
    deploy::deployment_record d;
    d.id = id;
    d.application = intent.app;
    d.group = intent.group;
    d.revision = intent.revision;
    d.bundle_format = "tar";
    d.config = intent.config;
    d.creator = intent.creator;
    d.file_exists_behavior = intent.file_exists_behavior;
    d.ignore_stop_failures = intent.ignore_stop_failures;
    d.create_time = in.value()->time_ms;
    d.status = deploy::deployment_status::in_progress;
    for (const auto& t : intent.targets) {
      d.hosts.push_back({t, deploy::host_status::pending, deploy::pending_lifecycle_events()});
    }
    MESH_CHECK(reg_->put_deployment(d));
    return d;
  }

  api::api_response call(const std::string& op, const json& body, const char* id = key_id,
                         const char* sec = secret) {
    api::api_request r;
    r.method = "POST";
    r.target = "/";
    r.body = body.dump();
    r.headers = {{"Host", "127.0.0.1:7947"},
                 {"Content-Type", "application/x-amz-json-1.1"},
                 {"X-Amz-Target", "CodeDeploy_20141006." + op}};
    sigtest::sign_request(r, id, sec, "codedeploy", test::wall_ms());
    return router_->handle(r);
  }
  static json body(const api::api_response& r) { return json::parse(r.body); }
  static std::string type(const api::api_response& r) {
    return json::parse(r.body, nullptr, false).value("__type", "");
  }

  void make_app_and_group() {
    ASSERT_EQ(call("CreateApplication", {{"applicationName", "web"}}).status, 200u);
    auto g =
        call("CreateDeploymentGroup",
             {{"applicationName", "web"},
              {"deploymentGroupName", "prod"},
              {"serviceRoleArn", "arn:aws:iam::123456789012:role/CodeDeploy"},
              {"deploymentConfigName", "CodeDeployDefault.AllAtOnce"},
              {"ec2TagFilters", {{{"Key", "role"}, {"Value", "web"}, {"Type", "KEY_AND_VALUE"}}}}});
    ASSERT_EQ(g.status, 200u) << g.body;
  }

  test::temp_dir dir_{"meshdeploy-aws-cd"};
  object_store objects_{dir_ / "s3"};
  std::vector<std::pair<std::function<void()>, std::function<void()>>> queued_;
  test::test_signers signers_;
  security::identity writer_ = security::generate_identity("ci");
  security::identity reader_ = security::generate_identity("auditor");
  access_keys keys_;
  test::local_node node_{dir_.path()};
  std::unique_ptr<records::store>& store_ = node_.store;
  std::unique_ptr<deploy::registry>& reg_ = node_.reg;
  std::unique_ptr<api::router>& router_ = node_.router;
};

TEST_F(CodeDeployApiTest, ApplicationsAreCreatedReadListedAndDeleted) {
  auto c = call("CreateApplication", {{"applicationName", "web"}, {"computePlatform", "Server"}});
  ASSERT_EQ(c.status, 200u) << c.body;
  EXPECT_EQ(c.content_type, "application/x-amz-json-1.1");
  EXPECT_TRUE(body(c)["applicationId"].is_string());
  auto dup = call("CreateApplication", {{"applicationName", "web"}});
  EXPECT_EQ(dup.status, 400u);
  EXPECT_EQ(type(dup), "ApplicationAlreadyExistsException") << dup.body;
  auto g = call("GetApplication", {{"applicationName", "web"}});
  ASSERT_EQ(g.status, 200u) << g.body;
  EXPECT_EQ(body(g)["application"]["applicationName"], "web");
  EXPECT_EQ(body(g)["application"]["computePlatform"], "Server");
  EXPECT_TRUE(body(g)["application"]["createTime"].is_number());
  EXPECT_EQ(body(call("ListApplications", json::object()))["applications"], json::array({"web"}));
  EXPECT_EQ(call("DeleteApplication", {{"applicationName", "web"}}).status, 200u);
  auto gone = call("GetApplication", {{"applicationName", "web"}});
  EXPECT_EQ(type(gone), "ApplicationDoesNotExistException");
  auto lambda =
      call("CreateApplication", {{"applicationName", "f"}, {"computePlatform", "Lambda"}});
  EXPECT_EQ(type(lambda), "InvalidComputePlatformException");
}

TEST_F(CodeDeployApiTest, SignaturesAndGrantsAreEnforced) {
  auto wrong = call("ListApplications", json::object(), key_id, "not-the-secret");
  EXPECT_EQ(wrong.status, 403u);
  EXPECT_EQ(type(wrong), "InvalidSignatureException");
  auto unknown = call("ListApplications", json::object(), "MDAKUNKNOWNUNKNOWN00", secret);
  EXPECT_EQ(unknown.status, 403u);
  EXPECT_EQ(type(unknown), "UnrecognizedClientException");
  api::api_request unsigned_req{"POST", "/", "{}", {}, {}};
  unsigned_req.headers = {{"Host", "h"}, {"X-Amz-Target", "CodeDeploy_20141006.ListApplications"}};
  auto missing = router_->handle(unsigned_req);
  EXPECT_EQ(missing.status, 403u);
  EXPECT_EQ(type(missing), "MissingAuthenticationTokenException");
  // The reader's grant allows read only.
  auto denied = call("CreateApplication", {{"applicationName", "web"}}, reader_id, reader_secret);
  EXPECT_EQ(denied.status, 400u);
  EXPECT_EQ(type(denied), "AccessDeniedException") << denied.body;
  EXPECT_FALSE(reg_->get_app("web"));
  // Revoking the key's grant revokes the key.
  ASSERT_EQ(call("CreateApplication", {{"applicationName", "web"}}).status, 200u);
  ASSERT_EQ(submit(signers_.grant({"*:*"}, 2, &writer_, true)), 201u);
  auto revoked = call("CreateApplication", {{"applicationName", "api"}});
  EXPECT_EQ(type(revoked), "AccessDeniedException") << revoked.body;
  EXPECT_EQ(
      body(call("ListApplications", json::object(), reader_id, reader_secret))["applications"],
      json::array({"web"}));
}

TEST_F(CodeDeployApiTest, RequestsAreParsedAsHostile) {
  auto unsupported = call("CreateCloudFormationDeployment", json::object());
  EXPECT_EQ(unsupported.status, 400u);
  EXPECT_EQ(type(unsupported), "UnsupportedActionException");
  auto missing = call("GetApplication", json::object());
  EXPECT_EQ(type(missing), "ValidationException");
  EXPECT_NE(body(missing)["message"].get<std::string>().find("applicationName"), std::string::npos);
  auto wrong_type = call("GetApplication", {{"applicationName", 42}});
  EXPECT_EQ(type(wrong_type), "ValidationException");
  auto too_long = call("GetApplication", {{"applicationName", std::string(5000, 'a')}});
  EXPECT_EQ(type(too_long), "ValidationException");
  api::api_request bad{"POST", "/", "[1,2", {}, {}};
  bad.headers = {{"Host", "h"}, {"X-Amz-Target", "CodeDeploy_20141006.ListApplications"}};
  sigtest::sign_request(bad, key_id, secret, "codedeploy", test::wall_ms());
  EXPECT_EQ(type(router_->handle(bad)), "SerializationException");
  // Requests without X-Amz-Target are the native API's.
  EXPECT_EQ(router_->handle({"GET", "/v1/health", "", {}, {}}).status, 200u);
}

TEST_F(CodeDeployApiTest, GroupsMapTagFiltersAndTagSetsOntoNodeTags) {
  make_app_and_group();
  auto g =
      call("GetDeploymentGroup", {{"applicationName", "web"}, {"deploymentGroupName", "prod"}});
  ASSERT_EQ(g.status, 200u) << g.body;
  const json info = body(g)["deploymentGroupInfo"];
  EXPECT_EQ(info["deploymentConfigName"], "CodeDeployDefault.AllAtOnce");
  EXPECT_EQ(info["onPremisesInstanceTagFilters"][0]["Key"], "role");
  EXPECT_EQ(reg_->get_group("web", "prod").value().tag_sets.size(), 1u);

  // ec2TagSet: groups are AND'ed, filters within a group OR'ed: role=web AND (zone=a OR zone=b).
  auto s = call(
      "CreateDeploymentGroup",
      {{"applicationName", "web"},
       {"deploymentGroupName", "zoned"},
       {"ec2TagSet",
        {{"ec2TagSetList",
          {{{{"Key", "role"}, {"Value", "web"}, {"Type", "KEY_AND_VALUE"}}},
           {{{"Key", "zone"}, {"Value", "a"}}, {{"Key", "zone"}, {"Value", "b"}}}}}}},
       {"autoRollbackConfiguration", {{"enabled", true}, {"events", {"DEPLOYMENT_FAILURE"}}}}});
  ASSERT_EQ(s.status, 200u) << s.body;
  const auto zoned = reg_->get_group("web", "zoned").value();
  EXPECT_EQ(zoned.tag_sets.size(), 2u);
  EXPECT_TRUE(zoned.auto_rollback);
  EXPECT_TRUE(deploy::matches(zoned.tag_sets, {{"role", "web"}, {"zone", "b"}}));
  EXPECT_FALSE(deploy::matches(zoned.tag_sets, {{"role", "web"}}));

  EXPECT_EQ(body(call("ListDeploymentGroups", {{"applicationName", "web"}}))["deploymentGroups"],
            json::array({"prod", "zoned"}));
  auto key_only =
      call("CreateDeploymentGroup", {{"applicationName", "web"},
                                     {"deploymentGroupName", "k"},
                                     {"ec2TagFilters", {{{"Key", "role"}, {"Type", "KEY_ONLY"}}}}});
  EXPECT_EQ(type(key_only), "InvalidTagException");
  auto no_tags =
      call("CreateDeploymentGroup", {{"applicationName", "web"}, {"deploymentGroupName", "none"}});
  EXPECT_EQ(type(no_tags), "InvalidTagException");
  auto no_app =
      call("CreateDeploymentGroup", {{"applicationName", "nope"},
                                     {"deploymentGroupName", "g"},
                                     {"ec2TagFilters", {{{"Key", "role"}, {"Value", "web"}}}}});
  EXPECT_EQ(type(no_app), "ApplicationDoesNotExistException");
  auto no_config =
      call("CreateDeploymentGroup", {{"applicationName", "web"},
                                     {"deploymentGroupName", "g"},
                                     {"deploymentConfigName", "Nope"},
                                     {"ec2TagFilters", {{{"Key", "role"}, {"Value", "web"}}}}});
  EXPECT_EQ(type(no_config), "DeploymentConfigDoesNotExistException");

  auto upd =
      call("UpdateDeploymentGroup", {{"applicationName", "web"},
                                     {"currentDeploymentGroupName", "prod"},
                                     {"deploymentConfigName", "CodeDeployDefault.OneAtATime"}});
  ASSERT_EQ(upd.status, 200u) << upd.body;
  EXPECT_EQ(reg_->get_group("web", "prod").value().config, "OneAtATime");
  // One record replaced the definition: the create was version 1, the update is version 2.
  EXPECT_EQ(store_->get(records::record_type::group, "web/prod").value()->version, 2u);
  auto upd_missing =
      call("UpdateDeploymentGroup", {{"applicationName", "web"},
                                     {"currentDeploymentGroupName", "nope"},
                                     {"deploymentConfigName", "CodeDeployDefault.OneAtATime"}});
  EXPECT_EQ(type(upd_missing), "DeploymentGroupDoesNotExistException");
  // The native route behind it: "replace" must be a boolean, and replaces only a live group.
  records::group_payload next;
  next.app = "web";
  next.name = "prod";
  next.selector = {{{"role", "web"}}};
  next.config = "HalfAtATime";
  auto native = [&](const json& extra, const records::payload& p, std::uint64_t version) {
    json b = extra;
    b["record"] = test::hex_of(signers_.sign(p, version, &writer_));
    return router_->handle(api::api_request{"POST", "/v1/records", b.dump(), {}, {}}).status;
  };
  EXPECT_EQ(native({{"replace", "yes"}}, next, 3), 400u);
  auto other = next;
  other.name = "other";
  EXPECT_EQ(native({{"replace", true}}, other, 1), 404u);
  EXPECT_EQ(native(json::object(), next, 3), 409u);  // a create of a live group
  EXPECT_EQ(native({{"replace", true}}, next, 3), 201u);
  EXPECT_EQ(reg_->get_group("web", "prod").value().config, "HalfAtATime");
  EXPECT_EQ(
      call("DeleteDeploymentGroup", {{"applicationName", "web"}, {"deploymentGroupName", "zoned"}})
          .status,
      200u);
  EXPECT_EQ(type(call("GetDeploymentGroup",
                      {{"applicationName", "web"}, {"deploymentGroupName", "zoned"}})),
            "DeploymentGroupDoesNotExistException");
}

TEST_F(CodeDeployApiTest, ConfigsListBuiltinsAndCreateCustomOnes) {
  auto list = body(call("ListDeploymentConfigs", json::object()))["deploymentConfigsList"];
  for (const char* n : {"CodeDeployDefault.OneAtATime", "CodeDeployDefault.HalfAtATime",
                        "CodeDeployDefault.AllAtOnce"}) {
    EXPECT_NE(std::find(list.begin(), list.end(), n), list.end()) << n;
  }
  auto c = call("CreateDeploymentConfig",
                {{"deploymentConfigName", "ThreeQuarters"},
                 {"minimumHealthyHosts", {{"type", "FLEET_PERCENT"}, {"value", 75}}}});
  ASSERT_EQ(c.status, 200u) << c.body;
  auto g = body(call("GetDeploymentConfig", {{"deploymentConfigName", "ThreeQuarters"}}));
  EXPECT_EQ(g["deploymentConfigInfo"]["minimumHealthyHosts"]["type"], "FLEET_PERCENT");
  EXPECT_EQ(g["deploymentConfigInfo"]["minimumHealthyHosts"]["value"], 75);
  auto builtin = body(
      call("GetDeploymentConfig", {{"deploymentConfigName", "CodeDeployDefault.HalfAtATime"}}));
  EXPECT_EQ(builtin["deploymentConfigInfo"]["deploymentConfigName"],
            "CodeDeployDefault.HalfAtATime");
  auto bad = call("CreateDeploymentConfig",
                  {{"deploymentConfigName", "X"},
                   {"minimumHealthyHosts", {{"type", "FLEET_PERCENT"}, {"value", 150}}}});
  EXPECT_EQ(type(bad), "InvalidMinimumHealthyHostValueException");
  EXPECT_EQ(type(call("CreateDeploymentConfig",
                      {{"deploymentConfigName", "ThreeQuarters"},
                       {"minimumHealthyHosts", {{"type", "HOST_COUNT"}, {"value", 1}}}})),
            "DeploymentConfigAlreadyExistsException");
}

TEST_F(CodeDeployApiTest, DeploymentsOfInlineAppSpecsAreCreatedFollowedAndStopped) {
  make_app_and_group();
  const std::string appspec = "version: 0.0\nos: linux\n";
  auto d = call("CreateDeployment",
                {{"applicationName", "web"},
                 {"deploymentGroupName", "prod"},
                 {"revision",
                  {{"revisionType", "AppSpecContent"},
                   {"appSpecContent", {{"content", appspec}, {"sha256", sha256_hex(appspec)}}}}},
                 {"fileExistsBehavior", "OVERWRITE"},
                 {"ignoreApplicationStopFailures", true}});
  ASSERT_EQ(d.status, 200u) << d.body;
  const std::string id = body(d)["deploymentId"];
  auto info = call("GetDeployment", {{"deploymentId", id}});
  ASSERT_EQ(info.status, 200u) << info.body;
  const json di = body(info)["deploymentInfo"];
  EXPECT_EQ(di["status"], "InProgress");
  EXPECT_EQ(di["deploymentConfigName"], "CodeDeployDefault.AllAtOnce");
  EXPECT_EQ(di["fileExistsBehavior"], "OVERWRITE");
  EXPECT_EQ(di["ignoreApplicationStopFailures"], true);
  EXPECT_EQ(di["revision"]["revisionType"], "AppSpecContent");
  EXPECT_EQ(di["deploymentOverview"]["Pending"], 2);
  EXPECT_TRUE(di["createTime"].is_number());

  auto inst = body(call("ListDeploymentInstances", {{"deploymentId", id}}))["instancesList"];
  EXPECT_EQ(inst.size(), 2u);  // h1 and h2 have role=web
  auto one = call("GetDeploymentInstance", {{"deploymentId", id}, {"instanceId", "h2"}});
  ASSERT_EQ(one.status, 200u) << one.body;
  EXPECT_EQ(body(one)["instanceSummary"]["lifecycleEvents"][3]["lifecycleEventName"],
            "ApplicationStop");
  EXPECT_EQ(type(call("GetDeploymentInstance", {{"deploymentId", id}, {"instanceId", "h3"}})),
            "InstanceDoesNotExistException");
  auto targets =
      body(call("BatchGetDeploymentTargets", {{"deploymentId", id}, {"targetIds", {"h1"}}}));
  EXPECT_EQ(targets["deploymentTargets"][0]["deploymentTargetType"], "InstanceTarget");
  EXPECT_EQ(targets["deploymentTargets"][0]["instanceTarget"]["targetId"], "h1");
  EXPECT_EQ(body(call("ListDeployments", {{"applicationName", "web"},
                                          {"deploymentGroupName", "prod"}}))["deployments"],
            json::array({id}));
  EXPECT_EQ(
      body(call("BatchGetDeployments", {{"deploymentIds", {id, "d-NOTTHERE"}}}))["deploymentsInfo"]
          .size(),
      1u);

  auto stop = call("StopDeployment", {{"deploymentId", id}});
  ASSERT_EQ(stop.status, 200u) << stop.body;
  EXPECT_EQ(body(stop)["status"], "Pending");
  EXPECT_EQ(body(call("GetDeployment", {{"deploymentId", id}}))["deploymentInfo"]["status"],
            "Stopped");
  EXPECT_EQ(type(call("StopDeployment", {{"deploymentId", id}})),
            "DeploymentAlreadyCompletedException");
  EXPECT_EQ(type(call("GetDeployment", {{"deploymentId", "d-NOPE"}})),
            "DeploymentDoesNotExistException");
  // The reader may look but not deploy.
  EXPECT_EQ(call("GetDeployment", {{"deploymentId", id}}, reader_id, reader_secret).status, 200u);
  auto denied =
      call("CreateDeployment",
           {{"applicationName", "web"},
            {"deploymentGroupName", "prod"},
            {"revision", {{"revisionType", "String"}, {"string", {{"content", appspec}}}}}},
           reader_id, reader_secret);
  EXPECT_EQ(type(denied), "AccessDeniedException");
  auto bad_sha = call("CreateDeployment",
                      {{"applicationName", "web"},
                       {"deploymentGroupName", "prod"},
                       {"revision",
                        {{"revisionType", "String"},
                         {"string", {{"content", appspec}, {"sha256", std::string(64, '0')}}}}}});
  EXPECT_EQ(type(bad_sha), "InvalidRevisionException");
  auto s3_without_s3 =
      call("CreateDeployment",
           {{"applicationName", "web"},
            {"deploymentGroupName", "prod"},
            {"revision",
             {{"revisionType", "S3"},
              {"s3Location", {{"bucket", "b"}, {"key", "k.zip"}, {"bundleType", "zip"}}}}}});
  EXPECT_EQ(type(s3_without_s3), "InvalidRevisionException");
}

TEST_F(CodeDeployApiTest, FailedHostsShowTheirDiagnostics) {
  make_app_and_group();
  deploy::deployment_record d;
  d.id = "d-FAILED123";
  d.application = "web";
  d.group = "prod";
  d.revision = std::string(64, 'a');
  d.bundle_format = "zip";
  d.config = "AllAtOnce";
  d.create_time = 1'700'000'000'000;
  d.complete_time = 1'700'000'060'000;
  d.status = deploy::deployment_status::failed;
  d.error = deploy::error_information{"HEALTH_CONSTRAINTS", "too many hosts failed"};
  deploy::host_progress h{"h1", deploy::host_status::failed, deploy::pending_lifecycle_events()};
  h.events[3].status = deploy::host_status::failed;
  h.events[3].start_time = 1'700'000'010'000;
  h.events[3].end_time = 1'700'000'020'000;
  h.events[3].diag = deploy::diagnostics{"ScriptFailed", "scripts/install.sh", "exit 3", "boom\n"};
  d.hosts.push_back(h);
  ASSERT_TRUE(reg_->put_deployment(d));
  const json di = body(call("GetDeployment", {{"deploymentId", d.id}}))["deploymentInfo"];
  EXPECT_EQ(di["status"], "Failed");
  EXPECT_EQ(di["errorInformation"]["code"], "HEALTH_CONSTRAINTS");
  EXPECT_DOUBLE_EQ(di["completeTime"].get<double>(), 1'700'000'060.0);
  const json s =
      body(call("GetDeploymentInstance", {{"deploymentId", d.id}, {"instanceId", "h1"}}));
  const json ev = s["instanceSummary"]["lifecycleEvents"][3];
  EXPECT_EQ(ev["status"], "Failed");
  EXPECT_EQ(ev["diagnostics"]["errorCode"], "ScriptFailed");
  EXPECT_EQ(ev["diagnostics"]["scriptName"], "scripts/install.sh");
  EXPECT_EQ(ev["diagnostics"]["logTail"], "boom\n");
  EXPECT_DOUBLE_EQ(ev["endTime"].get<double>(), 1'700'000'020.0);
  auto filtered = body(call("ListDeploymentInstances",
                            {{"deploymentId", d.id}, {"instanceStatusFilter", {"Succeeded"}}}));
  EXPECT_TRUE(filtered["instancesList"].empty());
  EXPECT_EQ(body(call("ListDeployments", {{"includeOnlyStatuses", {"Failed"}}}))["deployments"],
            json::array({d.id}));
}

TEST_F(CodeDeployApiTest, MeshRevisionLocationsNameRegisteredRevisionsWithoutTheirObject) {
  make_app_and_group();
  auto reg = call(
      "RegisterApplicationRevision",
      {{"applicationName", "web"},
       {"revision",
        {{"revisionType", "String"}, {"string", {{"content", "version: 0.0\nos: linux\n"}}}}}});
  ASSERT_EQ(reg.status, 200u) << reg.body;
  const auto revs = reg_->list_revisions("web").value();
  ASSERT_EQ(revs.size(), 1u);
  const std::string key = "web/" + revs[0].id + "." + revs[0].format;
  auto mesh = [&](const std::string& k, const std::string& bundle = "") {
    json loc{{"bucket", "meshdeploy-revisions"}, {"key", k}};
    if (!bundle.empty()) loc["bundleType"] = bundle;
    return json{{"revisionType", "S3"}, {"s3Location", loc}};
  };
  // Any node resolves the location from the revision record (this one has no S3 API at all).
  auto d =
      call("CreateDeployment",
           {{"applicationName", "web"}, {"deploymentGroupName", "prod"}, {"revision", mesh(key)}});
  ASSERT_EQ(d.status, 200u) << d.body;
  EXPECT_EQ(reg_->get_deployment(body(d)["deploymentId"]).value().revision, revs[0].id);
  auto got = call("GetApplicationRevision", {{"applicationName", "web"}, {"revision", mesh(key)}});
  ASSERT_EQ(got.status, 200u) << got.body;
  EXPECT_EQ(body(got)["revisionInfo"]["deploymentGroups"], json::array({"prod"}));

  const std::string other(64, 'a');
  EXPECT_EQ(type(call("RegisterApplicationRevision",
                      {{"applicationName", "web"}, {"revision", mesh("web/" + other + ".tar")}})),
            "RevisionDoesNotExistException");
  EXPECT_EQ(
      type(call("RegisterApplicationRevision",
                {{"applicationName", "web"}, {"revision", mesh("web/" + revs[0].id + ".zip")}})),
      "RevisionDoesNotExistException");  // not its format
  EXPECT_EQ(type(call("RegisterApplicationRevision",
                      {{"applicationName", "web"}, {"revision", mesh(key, "zip")}})),
            "InvalidBundleTypeException");
  for (const std::string& bad :
       std::vector<std::string>{"api/" + revs[0].id + ".tar", "web/" + revs[0].id, "web/x.tar",
                                "web/" + revs[0].id.substr(1) + "G.tar", "web/.tar", ""}) {
    EXPECT_EQ(type(call("RegisterApplicationRevision",
                        {{"applicationName", "web"}, {"revision", mesh(bad)}})),
              bad.empty() ? "ValidationException" : "InvalidRevisionException")
        << bad;
  }
}

// With an offload (the node's pool): registering an S3 object runs in the offloaded work and the
// answer comes after it, through api_response::deferred.
class CodeDeployOffloadTest : public CodeDeployApiTest {
 protected:
  CodeDeployOffloadTest() : CodeDeployApiTest(default_page_size, true) {}
};

TEST_F(CodeDeployOffloadTest, S3RegistrationsRunInTheOffloadedWorkAndAnswerAfterIt) {
  make_app_and_group();
  auto tar = prepare_from_appspec("version: 0.0\nos: linux\n", "web", dir_ / "work");
  ASSERT_TRUE(tar) << tar.error().message;
  std::ifstream in(tar.value().file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_TRUE(objects_.put("releases", "app.tar", bytes));
  auto deployment = [](const std::string& group, const std::string& key) {
    return json{{"applicationName", "web"},
                {"deploymentGroupName", group},
                {"revision",
                 {{"revisionType", "S3"},
                  {"s3Location", {{"bucket", "releases"}, {"key", key}, {"bundleType", "tar"}}}}}};
  };

  auto res = call("CreateDeployment", deployment("prod", "app.tar"));
  ASSERT_TRUE(res.deferred) << res.status << " " << res.body;
  std::optional<api::api_response> answer;
  res.deferred([&](api::api_response r) { answer = std::move(r); });
  EXPECT_FALSE(answer);
  ASSERT_EQ(queued_.size(), 1u);
  EXPECT_TRUE(reg_->list_revisions("web").value().empty());  // nothing hashed yet
  queued_[0].first();  // the pool's part: the object becomes a revision
  EXPECT_EQ(reg_->list_revisions("web").value().size(), 1u);
  EXPECT_FALSE(answer);
  queued_[0].second();  // back on the io thread: the deployment
  ASSERT_TRUE(answer);
  ASSERT_EQ(answer->status, 200u) << answer->body;
  const std::string id = json::parse(answer->body)["deploymentId"];
  EXPECT_TRUE(reg_->get_deployment(id));

  // What needs no bytes is checked at once, without offloading.
  auto no_group = call("CreateDeployment", deployment("nope", "app.tar"));
  EXPECT_FALSE(no_group.deferred);
  EXPECT_EQ(type(no_group), "DeploymentGroupDoesNotExistException");
  // A missing object is answered after the offloaded work, naming this node.
  auto missing =
      call("RegisterApplicationRevision",
           {{"applicationName", "web"}, {"revision", deployment("prod", "x.tar")["revision"]}});
  ASSERT_TRUE(missing.deferred);
  missing.deferred([&](api::api_response r) { answer = std::move(r); });
  ASSERT_EQ(queued_.size(), 2u);
  queued_[1].first();
  queued_[1].second();
  EXPECT_EQ(type(*answer), "RevisionDoesNotExistException");
  EXPECT_NE(answer->body.find("node h1"), std::string::npos) << answer->body;
}

// Lists in pages of two: nextToken leads through every item once, and a token of another
// operation or other request fields is refused.
class CodeDeployPagingTest : public CodeDeployApiTest {
 protected:
  CodeDeployPagingTest() : CodeDeployApiTest(2) {}

  // Every item of `op`'s `field`, following nextToken (at most 10 pages); pages counted.
  std::vector<std::string> all_pages(const std::string& op, json req, const char* field,
                                     int* pages) {
    std::vector<std::string> out;
    *pages = 0;
    while (*pages < 10) {
      auto r = call(op, req);
      EXPECT_EQ(r.status, 200u) << r.body;
      ++*pages;
      const json j = json::parse(r.body, nullptr, false);
      if (!j.is_object() || !j[field].is_array()) break;
      EXPECT_LE(j[field].size(), 2u) << r.body;
      for (const auto& v : j[field]) out.push_back(v.is_string() ? v.get<std::string>() : v.dump());
      if (!j.contains("nextToken")) break;
      req["nextToken"] = j["nextToken"];
    }
    return out;
  }
};

TEST_F(CodeDeployPagingTest, ListOperationsPageWithNextToken) {
  for (const char* a : {"app-3", "app-1", "app-5", "app-2", "app-4"}) {
    ASSERT_EQ(call("CreateApplication", {{"applicationName", a}}).status, 200u);
  }
  int pages = 0;
  EXPECT_EQ(all_pages("ListApplications", json::object(), "applications", &pages),
            (std::vector<std::string>{"app-1", "app-2", "app-3", "app-4", "app-5"}));
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(
      all_pages("ListDeploymentConfigs", json::object(), "deploymentConfigsList", &pages).size(),
      3u);
  EXPECT_EQ(pages, 2);

  make_app_and_group();
  for (const char* g : {"g1", "g2"}) {
    ASSERT_EQ(
        call("CreateDeploymentGroup", {{"applicationName", "web"},
                                       {"deploymentGroupName", g},
                                       {"ec2TagFilters", {{{"Key", "role"}, {"Value", "web"}}}}})
            .status,
        200u);
  }
  EXPECT_EQ(
      all_pages("ListDeploymentGroups", {{"applicationName", "web"}}, "deploymentGroups", &pages),
      (std::vector<std::string>{"g1", "g2", "prod"}));
  EXPECT_EQ(pages, 2);

  // Three deployments of three revisions: newest first across pages.
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto d = call("CreateDeployment",
                  {{"applicationName", "web"},
                   {"deploymentGroupName", std::vector<std::string>{"g1", "g2", "prod"}[i]},
                   {"revision",
                    {{"revisionType", "AppSpecContent"},
                     {"appSpecContent",
                      {{"content", "version: 0.0\nos: linux\n# " + std::to_string(i) + "\n"}}}}}});
    ASSERT_EQ(d.status, 200u) << d.body;
    ids.insert(ids.begin(), body(d)["deploymentId"].get<std::string>());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // distinct create times
  }
  EXPECT_EQ(all_pages("ListDeployments", {{"applicationName", "web"}}, "deployments", &pages), ids);
  EXPECT_EQ(pages, 2);
  EXPECT_EQ(all_pages("ListApplicationRevisions", {{"applicationName", "web"}}, "revisions", &pages)
                .size(),
            3u);
  // Two hosts (h1, h2) match role=web.
  EXPECT_EQ(
      all_pages("ListDeploymentInstances", {{"deploymentId", ids[0]}}, "instancesList", &pages)
          .size(),
      2u);
  EXPECT_EQ(pages, 1);

  // Tokens are bound to their operation and request.
  const json first = body(call("ListApplications", json::object()));
  ASSERT_TRUE(first.contains("nextToken"));
  const json token = first["nextToken"];
  EXPECT_EQ(type(call("ListDeploymentConfigs", {{"nextToken", token}})),
            "InvalidNextTokenException");
  const json groups = body(call("ListDeploymentGroups", {{"applicationName", "web"}}));
  EXPECT_EQ(type(call("ListDeploymentGroups",
                      {{"applicationName", "app-1"}, {"nextToken", groups["nextToken"]}})),
            "InvalidNextTokenException");
  EXPECT_EQ(type(call("ListApplications", {{"nextToken", "not-a-token"}})),
            "InvalidNextTokenException");
  EXPECT_EQ(type(call("ListApplications", {{"nextToken", 3}})), "ValidationException");
  EXPECT_EQ(body(call("ListApplications", {{"nextToken", token}}))["applications"],
            json::array({"app-3", "app-4"}));
}

TEST(CodeDeployRouteTest, LabelsAreOperationsThisApiAnswersOrOther) {
  const auto route = [](api::header_list headers) {
    api::api_request req;
    req.method = "POST";
    req.target = "/";
    req.headers = std::move(headers);
    return codedeploy_route(req);
  };
  EXPECT_EQ(route({{"X-Amz-Target", "CodeDeploy_20141006.CreateDeployment"}}),
            "CodeDeploy:CreateDeployment");
  EXPECT_EQ(route({{"x-amz-target", "CodeDeploy_20141006.ListDeploymentConfigs"}}),
            "CodeDeploy:ListDeploymentConfigs");
  // Made-up names never become labels (the set stays fixed).
  EXPECT_EQ(route({{"X-Amz-Target", "CodeDeploy_20141006.MadeUp123"}}), "CodeDeploy:other");
  EXPECT_EQ(route({{"X-Amz-Target", "DynamoDB_20120810.GetItem"}}), "CodeDeploy:other");
  EXPECT_EQ(route({}), "");
}

}  // namespace
}  // namespace meshdeploy::aws

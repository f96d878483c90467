// The API router with the signed-record routes, against a real registry, record store and
// verifier in a real RocksDB (no sockets).
#include "node/api/router.h"

#include "node/agent/executor.h"
#include "node/api/record_routes.h"
#include "node/deploy/errc.h"
#include "node/deploy/rollout/planning.h"
#include "node/security/verifier.h"
#include "tests/support/local_node.h"
#include "tests/support/signed_records.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace meshdeploy::api {
namespace {

using nlohmann::json;

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    router_->add_route_handler(make_record_routes(record_routes_context{
        *reg_, *store_, [this](const std::string& id) { return reg_->get_deployment(id); },
        [this](const records::record& r) -> result<records::payload> {
          MESH_CHECK(security::check_submission(r, *store_, keys_.admin.pub, test::wall_ms()));
          return records::decode_payload(r.type, r.payload);
        },
        [this](const records::record& r) -> result<bool> {
          if (auto v = security::verify(r, *store_, keys_.admin.pub); !v) return v.error();
          MESH_TRY(auto o, store_->put(r));
          return o != records::put_outcome::stale;
        },
        [this] { return members_; },
        [](const std::string& app, const std::string& group, std::vector<std::string> hosts,
           const std::string& id) {
          const deploy::rollout::record_set none(app, group);
          return deploy::rollout::plan_targets(none, deploy::rollout::admit(none), std::move(hosts),
                                               id);
        }}));
    EXPECT_EQ(submit(keys_.grant()).status, 201u);
  }
  api_response call(const std::string& method, const std::string& target,
                    const json& body = nullptr) {
    api_request r{method, target, body.is_null() ? std::string() : body.dump(), {}};
    return router_->handle(r);
  }
  api_response submit(const records::record& r) {
    return call("POST", "/v1/records", {{"record", test::hex_of(r)}});
  }
  api_response define(const records::payload& p, std::uint64_t version = 1) {
    return submit(keys_.sign(p, version));
  }
  static json body(const api_response& r) { return json::parse(r.body); }

  test::temp_dir dir_{"meshdeploy-router"};
  test::test_signers keys_;
  test::local_node node_{dir_.path()};
  std::unique_ptr<records::store>& store_ = node_.store;
  std::unique_ptr<deploy::registry>& reg_ = node_.reg;
  std::unique_ptr<agent::executor>& exec_ = node_.exec;
  std::unique_ptr<router>& router_ = node_.router;
  // What the plan route sees as the node's members (live, or dead and not yet forgotten).
  std::vector<live_host> members_{{"h1", {{"role", "web"}}}, {"h2", {{"role", "db"}}}};
};

records::group_payload web_group(std::string config = "OneAtATime") {
  records::group_payload g;
  g.app = "web";
  g.name = "g";
  g.selector = {{{"role", "web"}}};
  g.config = std::move(config);
  return g;
}

TEST_F(RouterTest, ParseTargetDecodesQuery) {
  auto t = parse_target("/v1/groups?app=my%20app&x=&y=a+b");
  EXPECT_EQ(t.path, "/v1/groups");
  EXPECT_EQ(t.query["app"], "my app");
  EXPECT_EQ(t.query["x"], "");
  EXPECT_EQ(t.query["y"], "a b");
  EXPECT_EQ(parse_target("/v1/x?bad=%zz").query["bad"], "%zz");
}

TEST_F(RouterTest, AppsCanBeCreatedListedAndDuplicatesConflict) {
  EXPECT_EQ(define(records::application_payload{"web", false}).status, 201u);
  auto dup = define(records::application_payload{"web", false}, 2);
  EXPECT_EQ(dup.status, 409u);
  EXPECT_EQ(body(dup)["error"]["code"], "AlreadyExists");
  auto list = call("GET", "/v1/apps");
  ASSERT_EQ(list.status, 200u);
  EXPECT_EQ(body(list)["applications"][0]["name"], "web");
  auto rec = call("GET", "/v1/records/application/web");
  ASSERT_EQ(rec.status, 200u) << rec.body;
  EXPECT_EQ(body(rec)["version"], 1);
  EXPECT_EQ(body(rec)["payload"]["name"], "web");
}

TEST_F(RouterTest, DeletingAnAppIsANewVersion) {
  ASSERT_EQ(define(records::application_payload{"web", false}).status, 201u);
  ASSERT_EQ(define(records::application_payload{"web", true}, 2).status, 201u);
  EXPECT_EQ(call("GET", "/v1/apps/web").status, 404u);
  EXPECT_EQ(define(records::application_payload{"web", false}, 3).status, 201u);
  EXPECT_EQ(call("GET", "/v1/apps/web").status, 200u);
}

TEST_F(RouterTest, UnsignedAndBadBodiesGetClearErrors) {
  auto r = call("POST", "/v1/records", "not an object");
  EXPECT_EQ(r.status, 400u);
  r = call("POST", "/v1/records", json::object());
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(body(r)["error"]["message"].get<std::string>().find("--identity"), std::string::npos);
  r = call("POST", "/v1/records", {{"record", "zz"}});
  EXPECT_EQ(r.status, 400u);
  r = call("POST", "/v1/records", {{"record", "00ff"}});
  EXPECT_EQ(r.status, 400u);
  r = define(records::application_payload{"has space", false});
  EXPECT_EQ(r.status, 400u);
  r = define(web_group());
  EXPECT_EQ(r.status, 404u);  // no application 'web'
  EXPECT_EQ(call("GET", "/v2/anything").status, 404u);
  EXPECT_EQ(call("PATCH", "/v1/apps").status, 404u);
  // The old unsigned routes are gone.
  EXPECT_EQ(call("POST", "/v1/apps", {{"name", "web"}}).status, 404u);
}

TEST_F(RouterTest, TamperedForgedAndUngrantedRecordsAreRefused) {
  auto rec = keys_.sign(records::application_payload{"web", false});
  rec.payload.back() = std::byte{0x01};  // tampered after signing
  EXPECT_EQ(submit(rec).status, 403u);
  const auto stranger = security::generate_identity("mallory");
  auto forged = keys_.sign(records::application_payload{"web", false}, 1, &stranger);
  auto denied = submit(forged);
  EXPECT_EQ(denied.status, 403u);
  EXPECT_EQ(body(denied)["error"]["code"], "PermissionDenied");
  // An operator allowed only to deploy may not define applications.
  const auto bob = security::generate_identity("bob");
  ASSERT_EQ(submit(keys_.grant({"deploy:app/web/*"}, 1, &bob)).status, 201u);
  auto by_bob = submit(keys_.sign(records::application_payload{"api", false}, 1, &bob));
  EXPECT_EQ(by_bob.status, 403u);
  EXPECT_NE(body(by_bob)["error"]["message"].get<std::string>().find("define:app/api"),
            std::string::npos)
      << by_bob.body;
  // A stale clock is refused at the API.
  auto old = keys_.sign(records::application_payload{"web", false}, 1, nullptr,
                        test::wall_ms() - 3'600'000);
  EXPECT_NE(submit(old).status, 201u);
  EXPECT_EQ(call("GET", "/v1/apps/web").status, 404u);
}

TEST_F(RouterTest, GroupNeedsTagsAndAKnownConfig) {
  ASSERT_EQ(define(records::application_payload{"web", false}).status, 201u);
  auto no_tags = web_group();
  no_tags.selector.clear();
  EXPECT_EQ(define(no_tags).status, 400u);
  EXPECT_EQ(define(web_group("Nope")).status, 404u);
  auto ok = define(web_group("AllAtOnce"));
  ASSERT_EQ(ok.status, 201u) << ok.body;
  auto g = body(call("GET", "/v1/groups/web/g"));
  EXPECT_EQ(g["deploymentConfig"], "AllAtOnce");
  EXPECT_EQ(g["id"].get<std::string>().size(), 36u);
}

TEST_F(RouterTest, ConfigsIncludeBuiltinsAndCustom) {
  records::config_payload c;
  c.name = "Most";
  c.min_healthy_type = 1;
  c.value = 75;
  EXPECT_EQ(define(c).status, 201u);
  c.name = "Bad";
  c.value = 175;
  EXPECT_EQ(define(c).status, 400u);
  auto list = body(call("GET", "/v1/configs"))["deploymentConfigs"];
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0]["name"], "OneAtATime");
  EXPECT_EQ(list[3]["minimumHealthyHosts"]["type"], "FLEET_PERCENT");
  EXPECT_EQ(list[3]["minimumHealthyHosts"]["value"], 75);
}

TEST_F(RouterTest, PlanOrdersMatchingLiveHostsAndComputesK) {
  ASSERT_EQ(define(records::application_payload{"web", false}).status, 201u);
  ASSERT_EQ(define(web_group()).status, 201u);
  auto plan = call("GET", "/v1/groups/web/g/plan?deployment=d-ABCDEFGHI&config=AllAtOnce");
  ASSERT_EQ(plan.status, 200u) << plan.body;
  EXPECT_EQ(body(plan)["targets"], json::array({"h1"}));
  EXPECT_EQ(body(plan)["maxOutOfService"], 1);
  EXPECT_EQ(body(plan)["deploymentConfig"], "AllAtOnce");
  EXPECT_EQ(call("GET", "/v1/groups/web/nope/plan").status, 404u);
}

// Members SWIM lists as dead still count for admission (the electorate): a node that sees only
// a minority of the group is refused a plan, naming the absent hosts, unless told to ignore them.
TEST_F(RouterTest, PlanCountsDeadMembersAndRefusesAMinorityView) {
  ASSERT_EQ(define(records::application_payload{"web", false}).status, 201u);
  ASSERT_EQ(define(web_group()).status, 201u);
  members_.push_back({"h3", {{"role", "web"}}, false});
  auto half = call("GET", "/v1/groups/web/g/plan?deployment=d-ABCDEFGHI");
  ASSERT_EQ(half.status, 503u) << half.body;  // 1 of 2: not a majority
  EXPECT_NE(half.body.find("sees only 1 of the 2 hosts"), std::string::npos) << half.body;
  EXPECT_NE(half.body.find("h3"), std::string::npos) << half.body;
  EXPECT_NE(half.body.find("--ignore-absent-hosts"), std::string::npos) << half.body;

  auto ignore = call("GET", "/v1/groups/web/g/plan?deployment=d-ABCDEFGHI&absent=ignore");
  ASSERT_EQ(ignore.status, 200u) << ignore.body;
  EXPECT_EQ(body(ignore)["targets"], json::array({"h1"}));
  EXPECT_EQ(body(ignore)["electorate"], json::array());
  EXPECT_EQ(call("GET", "/v1/groups/web/g/plan?absent=maybe").status, 400u);

  members_.push_back({"h4", {{"role", "web"}}, true});
  auto most = call("GET", "/v1/groups/web/g/plan?deployment=d-ABCDEFGHI");
  ASSERT_EQ(most.status, 200u) << most.body;  // 2 of 3
  EXPECT_EQ(body(most)["targets"].size(), 2u);
  EXPECT_EQ(body(most)["electorate"], json::array({"h3"}));
}

TEST_F(RouterTest, DeploymentOfUnknownRevisionIsRejected) {
  ASSERT_EQ(define(records::application_payload{"web", false}).status, 201u);
  ASSERT_EQ(define(web_group()).status, 201u);
  records::intent_payload in;
  in.deployment_id = "d-AAAAAAAAA";
  in.app = "web";
  in.group = "g";
  in.revision = std::string(64, 'a');
  in.config = "OneAtATime";
  in.targets = {"h1"};
  auto r = define(in);
  EXPECT_EQ(r.status, 404u) << r.body;
  EXPECT_EQ(call("GET", "/v1/deployments/d-NOPE").status, 404u);
}

// A deployment record of group "gid" on `hosts`, stored in the registry as the mesh deployer
// stores status documents.
deploy::deployment_record logged_deployment(const std::string& id, std::vector<std::string> hosts) {
  deploy::deployment_record d;
  d.id = id;
  d.application = "web";
  d.group = "g";
  d.group_id = "gid";
  d.status = deploy::deployment_status::succeeded;
  d.version = 1;
  for (auto& h : hosts) d.hosts.push_back(deploy::host_progress{std::move(h), {}, {}});
  return d;
}

TEST_F(RouterTest, OwnLogIsReadLocallyAndALongOneKeepsItsLastMebibyte) {
  ASSERT_TRUE(reg_->put_deployment(logged_deployment("d-LOG000001", {"h1", "h2"})));
  const auto file = exec_->log_file("gid", "d-LOG000001");
  std::filesystem::create_directories(file.parent_path());
  std::string log = "[t] LifecycleEvent - Install\ninstalling\n";
  std::ofstream(file, std::ios::binary) << log;
  int remote_calls = 0;
  router_->set_remote_log_reader([&](const std::string&, const std::string&, const std::string&,
                                     deploy::log_service::done_fn) { ++remote_calls; });
  for (const char* target :
       {"/v1/deployments/d-LOG000001/logs", "/v1/deployments/d-LOG000001/logs?host=h1&event="}) {
    auto r = call("GET", target);
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, log);
    EXPECT_TRUE(r.headers.empty());
    EXPECT_FALSE(r.deferred);
  }
  EXPECT_EQ(remote_calls, 0);

  std::string big(deploy::max_log_text_bytes + 100, 'x');
  big += "\nlast line\n";
  std::ofstream(file, std::ios::binary | std::ios::trunc) << big;
  auto r = call("GET", "/v1/deployments/d-LOG000001/logs");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "last line\n");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "X-Meshdeploy-Log-Truncated");
  EXPECT_EQ(r.headers[0].second, std::to_string(big.size()));
}

TEST_F(RouterTest, AnotherHostsLogIsADeferredAnswerFromTheRemoteReader) {
  ASSERT_TRUE(reg_->put_deployment(logged_deployment("d-LOG000002", {"h1", "h2"})));
  std::vector<std::string> asked;
  std::vector<deploy::log_service::done_fn> pending;
  router_->set_remote_log_reader([&](const std::string& host, const std::string& id,
                                     const std::string& event, deploy::log_service::done_fn done) {
    asked.push_back(host + " " + id + " " + event);
    pending.push_back(std::move(done));
  });
  std::vector<api_response> replies;
  auto start = [&](const std::string& target) {
    auto r = call("GET", target);
    EXPECT_TRUE(r.deferred) << r.body;
    if (r.deferred) r.deferred([&](api_response a) { replies.push_back(std::move(a)); });
  };
  start("/v1/deployments/d-LOG000002/logs?host=h2&event=Install");
  // An unknown deployment is not checked here: the host decides.
  start("/v1/deployments/d-UNKNOWN01/logs?host=h7");
  start("/v1/deployments/d-UNKNOWN01/logs?host=h8");
  ASSERT_EQ(asked, (std::vector<std::string>{"h2 d-LOG000002 Install", "h7 d-UNKNOWN01 ",
                                             "h8 d-UNKNOWN01 "}));
  EXPECT_TRUE(replies.empty());
  pending[0](deploy::log_text{"tail\n", true, 123});
  pending[1](make_error(deploy::errc::unavailable, "host 'h7' is dead"));
  pending[2](make_error(deploy::errc::timed_out, "host 'h8' did not answer"));
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].status, 200u);
  EXPECT_EQ(replies[0].body, "tail\n");
  EXPECT_EQ(replies[0].content_type, "text/plain; charset=utf-8");
  ASSERT_EQ(replies[0].headers.size(), 1u);
  EXPECT_EQ(replies[0].headers[0].second, "123");
  EXPECT_EQ(replies[1].status, 503u);
  EXPECT_EQ(body(replies[1])["error"]["code"], "HostUnavailable");
  EXPECT_EQ(body(replies[1])["error"]["message"], "host 'h7' is dead");
  EXPECT_EQ(replies[2].status, 504u);
  EXPECT_EQ(body(replies[2])["error"]["code"], "HostTimedOut");
}

TEST_F(RouterTest, AHostOutsideAKnownDeploymentsTargetsIsRefusedWithoutAsking) {
  ASSERT_TRUE(reg_->put_deployment(logged_deployment("d-LOG000003", {"h1", "h2"})));
  int remote_calls = 0;
  router_->set_remote_log_reader([&](const std::string&, const std::string&, const std::string&,
                                     deploy::log_service::done_fn) { ++remote_calls; });
  auto r = call("GET", "/v1/deployments/d-LOG000003/logs?host=h9");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(body(r)["error"]["message"],
            "host 'h9' is not a target of d-LOG000003 (its hosts: h1, h2)");
  EXPECT_EQ(remote_calls, 0);
  // This node itself, when not a target, says so (a mesh deployment it only watches).
  ASSERT_TRUE(reg_->put_deployment(logged_deployment("d-LOG000004", {"h2"})));
  auto own = call("GET", "/v1/deployments/d-LOG000004/logs");
  EXPECT_EQ(own.status, 404u);
  EXPECT_NE(body(own)["error"]["message"].get<std::string>().find(
                "this host ('h1') is not a target of d-LOG000004"),
            std::string::npos);
}

}  // namespace
}  // namespace meshdeploy::api

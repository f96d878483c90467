// End-to-end: a real `meshdeploy node run` process and real CLI invocations
// deploying the example revisions into a temporary install root.
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <signal.h>
#include <thread>

namespace meshdeploy::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

class SingleNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = std::make_unique<node_process>("host-1", dir_ / "data", dir_ / "root",
                                           std::vector<std::string>{"role=web", "env=test"});
    ASSERT_FALSE(node_->api().empty()) << read_file(node_->log_path());
    ASSERT_EQ(node_->cli({"app", "create", "web"}).exit_code, 0);
    ASSERT_EQ(node_->cli({"group", "create", "--app", "web", "--name", "prod", "--tag", "role=web"})
                  .exit_code,
              0);
  }
  void TearDown() override {
    // Stop the example's background service if it is running.
    const fs::path pid_file = dir_ / "root/srv/webapp-run/webapp.pid";
    if (fs::exists(pid_file)) {
      const int pid = std::stoi(read_file(pid_file));
      if (pid > 0) ::kill(pid, SIGKILL);
    }
    node_.reset();
  }

  json status(const std::string& id) {
    auto r = node_->cli({"status", id, "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out);
  }
  static const json& event(const json& d, const std::string& name) {
    for (const auto& e : d["hosts"][0]["events"]) {
      if (e["name"] == name) return e;
    }
    static const json none;
    return none;
  }
  // True while `pid` exists and is not a zombie (PID 1 here may not reap).
  static bool alive(int pid) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
  }
  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  temp_dir dir_{"meshdeploy-integ"};
  std::unique_ptr<node_process> node_;
};

TEST_F(SingleNodeTest, WebappDeploysEndToEndAndRedeployRunsPreviousStop) {
  auto r = node_->cli({"deploy", "--app", "web", "--group", "prod", "--source",
                       source_path("examples/webapp").string(), "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string id = first_line(r.out);
  ASSERT_EQ(id.rfind("d-", 0), 0u) << r.out;
  EXPECT_NE(r.err.find("ValidateService"), std::string::npos)
      << "progress goes to stderr: " << r.err;

  json d = status(id);
  EXPECT_EQ(d["status"], "Succeeded");
  EXPECT_EQ(d["overview"]["Succeeded"], 1);
  ASSERT_EQ(d["hosts"].size(), 1u);
  EXPECT_EQ(d["hosts"][0]["host"], "host-1");
  for (const char* name :
       {"ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall",
        "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic"}) {
    EXPECT_EQ(event(d, name)["status"], "Succeeded") << name;
  }
  EXPECT_EQ(event(d, "BlockTraffic")["status"], "Skipped");
  EXPECT_EQ(event(d, "AllowTraffic")["status"], "Skipped");
  EXPECT_EQ(event(d, "ValidateService")["diagnostics"]["errorCode"], "Success");
  EXPECT_NE(event(d, "ValidateService")["diagnostics"]["logTail"].get<std::string>().find(
                "webapp is healthy"),
            std::string::npos);

  // Installed under the install root, with permissions applied.
  const fs::path index = dir_ / "root/srv/webapp/site/index.html";
  ASSERT_TRUE(fs::exists(index));
  EXPECT_EQ(fs::status(index).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                fs::perms::others_read);
  EXPECT_TRUE(fs::exists(dir_ / "root/srv/webapp/etc/webapp.conf"));

  // The start script leaves a background service holding its stdout open;
  // the event must still finish promptly (CodeDeploy's agent would hang).
  const auto& start = event(d, "ApplicationStart");
  EXPECT_EQ(start["status"], "Succeeded");

  // Second deployment: ApplicationStop runs the first revision's stop.sh.
  fs::copy(source_path("examples/webapp"), dir_ / "v2", fs::copy_options::recursive);
  write_file(dir_ / "v2/site/index.html", "<h1>Hello from meshdeploy v2</h1>\n");
  fs::remove(dir_ / "v2/site/static/style.css");
  r = node_->cli(
      {"deploy", "--app", "web", "--group", "prod", "--source", (dir_ / "v2").string(), "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string id2 = first_line(r.out);
  auto logs = node_->cli({"logs", id2, "--event", "ApplicationStop"});
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find("stopped webapp"), std::string::npos) << logs.out;
  EXPECT_EQ(logs.out.find("webapp is healthy"), std::string::npos) << "filtered to one event";
  // The file only the first revision had is gone (Install removes what the
  // previous deployment installed).
  EXPECT_FALSE(fs::exists(dir_ / "root/srv/webapp/site/static/style.css"));
  EXPECT_NE(read_file(index).find("v2"), std::string::npos);

  auto list = node_->cli({"deployments", "--app", "web", "--output", "json"});
  ASSERT_EQ(list.exit_code, 0);
  const json l = json::parse(list.out);
  ASSERT_EQ(l["deployments"].size(), 2u);
  EXPECT_EQ(l["deployments"][0]["deploymentId"], id2) << "newest first";
}

TEST_F(SingleNodeTest, FailingValidateServiceFailsWithDiagnostics) {
  auto r = node_->cli({"deploy", "--app", "web", "--group", "prod", "--source",
                       source_path("examples/failing-validate").string(), "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("health check failed"), std::string::npos) << "log tail shown: " << r.out;
  json d = status(first_line(r.out));
  EXPECT_EQ(d["status"], "Failed");
  EXPECT_EQ(d["hosts"][0]["status"], "Failed");
  const auto& v = event(d, "ValidateService");
  EXPECT_EQ(v["status"], "Failed");
  EXPECT_EQ(v["diagnostics"]["errorCode"], "ScriptFailed");
  EXPECT_EQ(v["diagnostics"]["scriptName"], "scripts/validate.sh");
  EXPECT_NE(v["diagnostics"]["logTail"].get<std::string>().find("got 503"), std::string::npos);
  EXPECT_EQ(event(d, "AfterAllowTraffic")["status"], "Skipped");
  EXPECT_FALSE(d["errorInformation"].is_null());
}

TEST_F(SingleNodeTest, SlowHookTimesOutAndIsKilled) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = node_->cli({"deploy", "--app", "web", "--group", "prod", "--source",
                       source_path("examples/slow-hook").string(), "--wait", "--output", "json"});
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  json d = json::parse(r.out);
  EXPECT_EQ(d["status"], "Failed");
  EXPECT_EQ(event(d, "AfterInstall")["diagnostics"]["errorCode"], "ScriptTimedOut");
  EXPECT_LT(took, 30s) << "2 s timeout plus grace, not the script's 300 s";
}

TEST_F(SingleNodeTest, InvalidRevisionIsRejectedBeforeAnythingIsDeployed) {
  write_file(dir_ / "bad/appspec.yml",
             "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: scripts/nope.sh\n");
  auto v = node_->cli({"validate", (dir_ / "bad").string()});
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_NE(v.err.find("scripts/nope.sh"), std::string::npos) << v.err;
  EXPECT_NE(v.err.find(":5"), std::string::npos) << "names the line: " << v.err;

  auto r = node_->cli(
      {"deploy", "--app", "web", "--group", "prod", "--source", (dir_ / "bad").string(), "--wait"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  auto list = node_->cli({"deployments", "--output", "json"});
  EXPECT_TRUE(json::parse(list.out)["deployments"].empty());
}

TEST_F(SingleNodeTest, GroupMatchingNoHostFailsAtOnce) {
  ASSERT_EQ(
      node_->cli({"group", "create", "--app", "web", "--name", "db", "--tag", "role=db"}).exit_code,
      0);
  auto push =
      node_->cli({"push", "--app", "web", "--source", source_path("examples/noop").string()});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  auto r =
      node_->cli({"deploy", "--app", "web", "--group", "db", "--revision", first_line(push.out)});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  json d = status(first_line(r.out));
  EXPECT_EQ(d["status"], "Failed");
  EXPECT_EQ(d["errorInformation"]["code"], "NO_INSTANCES");
}

TEST_F(SingleNodeTest, GroupUpdateChangesWhatIsGivenAndKeepsTheRest) {
  ASSERT_EQ(node_
                ->cli({"group", "create", "--app", "web", "--name", "db", "--tag", "role=db",
                       "--config", "AllAtOnce"})
                .exit_code,
            0);
  // The selection now matches this host; the config stays, rollback turns on.
  auto u = node_->cli(
      {"group", "update", "--app", "web", "--name", "db", "--tag", "role=web", "--auto-rollback"});
  ASSERT_EQ(u.exit_code, 0) << u.out << u.err;
  EXPECT_NE(u.out.find("version 2"), std::string::npos) << u.out;
  auto g = run_command({"/usr/bin/curl", "-s", "http://" + node_->api() + "/v1/groups/web/db"});
  json group = json::parse(g.out);
  EXPECT_EQ(group["deploymentConfig"], "AllAtOnce") << g.out;
  EXPECT_EQ(group["autoRollback"], true) << g.out;
  ASSERT_EQ(group["tagSets"].size(), 1u) << g.out;
  EXPECT_EQ(group["tagSets"][0][0]["value"], "web") << g.out;
  auto push =
      node_->cli({"push", "--app", "web", "--source", source_path("examples/noop").string()});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  auto r = node_->cli(
      {"deploy", "--app", "web", "--group", "db", "--revision", first_line(push.out), "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // Only the config; then rollback off again.
  ASSERT_EQ(node_
                ->cli({"group", "update", "--app", "web", "--name", "db", "--config", "HalfAtATime",
                       "--no-auto-rollback"})
                .exit_code,
            0);
  group = json::parse(
      run_command({"/usr/bin/curl", "-s", "http://" + node_->api() + "/v1/groups/web/db"}).out);
  EXPECT_EQ(group["deploymentConfig"], "HalfAtATime");
  EXPECT_EQ(group["autoRollback"], false);
  EXPECT_EQ(group["tagSets"][0][0]["value"], "web");
  // Errors name what is wrong.
  auto missing =
      node_->cli({"group", "update", "--app", "web", "--name", "nope", "--config", "AllAtOnce"});
  EXPECT_EQ(missing.exit_code, 2) << missing.out << missing.err;
  EXPECT_NE(missing.err.find("nope"), std::string::npos) << missing.err;
  auto both = node_->cli(
      {"group", "update", "--app", "web", "--name", "db", "--auto-rollback", "--no-auto-rollback"});
  EXPECT_EQ(both.exit_code, 2) << both.out << both.err;
}

TEST_F(SingleNodeTest, BundleOverOneMebibyteIsPushedAndLargeJsonBodiesAreAnswered) {
  // Beast's default body limit (1 MiB) used to apply to the header of every request, so a push of
  // a bundle over 1 MiB was dropped. 3 MiB of random bytes stay over 1 MiB when zipped.
  std::string payload(3u << 20, '\0');
  std::mt19937_64 rng(42);
  for (std::size_t i = 0; i + 8 <= payload.size(); i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(payload.data() + i, &v, 8);
  }
  write_file(dir_ / "big/appspec.yml", "version: 0.0\nos: linux\n");
  write_file(dir_ / "big/payload.bin", payload);
  auto push = node_->cli({"push", "--app", "web", "--source", (dir_ / "big").string()});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  const std::string id = first_line(push.out);
  std::uintmax_t stored_size = 0;  // revisions/web/ID.FORMAT
  for (const auto& e : fs::directory_iterator(dir_ / "data/revisions/web")) {
    if (e.path().filename().string().rfind(id + ".", 0) == 0) stored_size = fs::file_size(e.path());
  }
  EXPECT_GT(stored_size, 1u << 20) << "revision " << id << " stored with its bundle";

  // A JSON route still refuses a body over its limit, with an answer rather than a dropped
  // connection, and without reading it.
  write_file(dir_ / "big.json", payload);
  auto r = run_command({"/usr/bin/curl", "-s", "-w", "\n%{http_code}", "-X", "POST", "-H",
                        "Content-Type: application/json", "--data-binary",
                        "@" + (dir_ / "big.json").string(), "http://" + node_->api() + "/v1/apps"});
  EXPECT_NE(r.out.find("larger than this node accepts"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.substr(r.out.rfind('\n') + 1), "400") << r.out;
}

TEST_F(SingleNodeTest, UsageErrorsAndUnreachableNodeHaveTheirExitCodes) {
  EXPECT_EQ(node_->cli({"deploy", "--app", "web"}).exit_code, 2);
  EXPECT_EQ(node_->cli({"status", "d-NOPE00000"}).exit_code, 2);
  auto r = run_command({meshdeploy_binary(), "--api", "127.0.0.1:1", "app", "list"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("127.0.0.1:1"), std::string::npos);
  auto help = run_command({meshdeploy_binary(), "deploy", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Example"), std::string::npos);
}

TEST_F(SingleNodeTest, KillDuringHookIsReportedHonestlyAfterRestart) {
  // A hook that runs long enough to be caught mid-flight and records its pid.
  const fs::path pid_file = dir_ / "hook.pid";
  write_file(dir_ / "crash/appspec.yml",
             "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: hang.sh\n"
             "      timeout: 120\n");
  write_file(dir_ / "crash/hang.sh",
             "#!/bin/sh\nsleep 100 &\necho $! > " + pid_file.string() + "\nwait\n", 0755);
  auto r = node_->cli(
      {"deploy", "--app", "web", "--group", "prod", "--source", (dir_ / "crash").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = first_line(r.out);
  // Wait (bounded) for the hook to start.
  for (int i = 0; i < 200 && !fs::exists(pid_file); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(fs::exists(pid_file));
  std::this_thread::sleep_for(100ms);
  const int hook_child = std::stoi(read_file(pid_file));
  ASSERT_TRUE(alive(hook_child)) << "the hook's child is running";

  node_->kill_hard();
  EXPECT_TRUE(alive(hook_child)) << "kill -9 of the node leaves the hook's process behind";
  ASSERT_TRUE(node_->start()) << read_file(node_->log_path());

  json d = status(id);
  EXPECT_EQ(d["status"], "Failed");
  EXPECT_EQ(d["errorInformation"]["code"], "DEPLOYMENT_INTERRUPTED");
  const auto& e = event(d, "AfterInstall");
  EXPECT_EQ(e["status"], "Failed");
  EXPECT_NE(e["diagnostics"]["message"].get<std::string>().find("not rerun"), std::string::npos)
      << e.dump();
  EXPECT_EQ(event(d, "ApplicationStart")["status"], "Skipped");
  // Recovery killed the leftover process (bounded wait for the reaper).
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !alive(hook_child);
    if (!gone) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(gone) << "leftover hook process " << hook_child << " still running";

  // The group is usable again.
  auto again = node_->cli({"deploy", "--app", "web", "--group", "prod", "--source",
                           source_path("examples/noop").string(), "--wait"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
}

TEST_F(SingleNodeTest, StopLetsTheRunningScriptFinishAndStartsNoOther) {
  const fs::path started = dir_ / "started";
  write_file(dir_ / "stoppable/appspec.yml",
             "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: wait.sh\n"
             "  AfterInstall:\n    - location: never.sh\n");
  write_file(dir_ / "stoppable/wait.sh",
             "#!/bin/sh\ntouch " + started.string() + "\nsleep 2\necho finished-wait\n", 0755);
  write_file(dir_ / "stoppable/never.sh", "#!/bin/sh\necho never-ran\n", 0755);
  auto r = node_->cli(
      {"deploy", "--app", "web", "--group", "prod", "--source", (dir_ / "stoppable").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = first_line(r.out);
  for (int i = 0; i < 200 && !fs::exists(started); ++i) std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(fs::exists(started));
  auto stop = node_->cli({"stop", id});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  json d;
  for (int i = 0; i < 200; ++i) {  // bounded: the running script needs about 2 s
    d = status(id);
    if (d["status"] != "InProgress") break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(d["status"], "Stopped");
  EXPECT_EQ(event(d, "BeforeInstall")["status"], "Succeeded") << "the running script finished";
  EXPECT_EQ(event(d, "AfterInstall")["status"], "Skipped");
  auto log = node_->cli({"logs", id});
  EXPECT_NE(log.out.find("finished-wait"), std::string::npos);
  EXPECT_EQ(log.out.find("never-ran"), std::string::npos);
}

}  // namespace
}  // namespace meshdeploy::test

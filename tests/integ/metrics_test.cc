// GET /metrics of a real `meshdeploy node run` after real deployments: the exposition parses
// strictly (tests/support/prometheus_text.h), the rollout families count what happened (the
// hooks the webapp example ran, the deployments that succeeded) and API latency is labelled by
// route pattern. docs/operations.md "Metrics". The node logs in JSON (--log-format json), one
// object per line, with a line per lifecycle event that ran (docs/operations.md "Logs").
#include "tests/support/process.h"
#include "tests/support/prometheus_text.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <set>
#include <signal.h>
#include <sstream>
#include <thread>

namespace meshdeploy::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = std::make_unique<node_process>("host-1", dir_ / "data", dir_ / "root",
                                           std::vector<std::string>{"role=web"},
                                           std::vector<std::string>{"--log-format", "json"});
    ASSERT_FALSE(node_->api().empty()) << read_file(node_->log_path());
    ASSERT_EQ(node_->cli({"app", "create", "web"}).exit_code, 0);
    ASSERT_EQ(node_->cli({"group", "create", "--app", "web", "--name", "prod", "--tag", "role=web"})
                  .exit_code,
              0);
  }
  void TearDown() override {
    const fs::path pid_file = dir_ / "root/srv/webapp-run/webapp.pid";
    if (fs::exists(pid_file)) {
      const int pid = std::stoi(read_file(pid_file));
      if (pid > 0) ::kill(pid, SIGKILL);
    }
    node_.reset();
  }

  prom_text scrape() {
    auto r = run_command({"/usr/bin/curl", "-s", "--max-time", "10", "-D",
                          (dir_ / "headers").string(), "http://" + node_->api() + "/metrics"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(read_file(dir_ / "headers").find("text/plain; version=0.0.4"), std::string::npos);
    auto p = parse_prometheus_text(r.out);
    EXPECT_TRUE(p.problems.empty()) << ::testing::PrintToString(p.problems) << "\n" << r.out;
    return p;
  }
  // Scrapes until `done` holds (the node takes changed deployments in once a second), at most
  // 15 s; returns the last scrape either way.
  template <class Pred>
  prom_text scrape_until(Pred done) {
    prom_text p;
    for (int i = 0; i < 60; ++i) {
      p = scrape();
      if (done(p)) break;
      std::this_thread::sleep_for(250ms);
    }
    return p;
  }
  void deploy_webapp() {
    auto r = node_->cli({"deploy", "--app", "web", "--group", "prod", "--source",
                         source_path("examples/webapp").string(), "--wait"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  temp_dir dir_{"meshdeploy-metrics"};
  std::unique_ptr<node_process> node_;
};

TEST_F(MetricsTest, RolloutFamiliesCountTheHooksThatRanAndTheDeploymentsThatSucceeded) {
  // Before any deployment: every family declared, nothing counted.
  auto p = scrape();
  for (const char* f :
       {"meshdeploy_deployments", "meshdeploy_deployments_finished_total",
        "meshdeploy_rollout_hosts_in_window", "meshdeploy_hook_duration_seconds",
        "meshdeploy_hook_runs_total", "meshdeploy_api_request_duration_seconds",
        "meshdeploy_api_long_polls_total", "meshdeploy_swarm_download_bytes_total"}) {
    EXPECT_TRUE(p.types.count(f)) << f;
  }
  EXPECT_EQ(p.types["meshdeploy_hook_duration_seconds"], "histogram");
  EXPECT_EQ(p.sum("meshdeploy_deployments"), 0);
  EXPECT_FALSE(p.sum("meshdeploy_hook_duration_seconds_count"));

  // The first deployment runs the six hooks of the new revision (the three stop-side events
  // have no previous revision to take scripts from, and run none).
  deploy_webapp();
  p = scrape_until([](const prom_text& x) {
    return x.sum("meshdeploy_deployments", {{"status", "Succeeded"}}) == 1 &&
           x.sum("meshdeploy_hook_duration_seconds_count").value_or(0) >= 6;
  });
  EXPECT_EQ(p.sum("meshdeploy_deployments", {{"status", "Succeeded"}}), 1);
  EXPECT_EQ(p.sum("meshdeploy_deployments", {{"status", "InProgress"}}), 0);
  EXPECT_EQ(p.sum("meshdeploy_deployments_finished_total", {{"status", "Succeeded"}}), 1);
  EXPECT_EQ(p.sum("meshdeploy_hook_duration_seconds_count"), 6);
  EXPECT_EQ(p.sum("meshdeploy_hook_runs_total", {{"outcome", "Success"}}), 6);
  for (const char* e : {"BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService",
                        "BeforeAllowTraffic", "AfterAllowTraffic"}) {
    EXPECT_EQ(p.sum("meshdeploy_hook_duration_seconds_count", {{"event", e}}), 1) << e;
  }
  EXPECT_FALSE(p.sum("meshdeploy_hook_duration_seconds_count", {{"event", "ApplicationStop"}}));
  EXPECT_FALSE(p.sum("meshdeploy_hook_duration_seconds_count", {{"event", "Install"}}));
  EXPECT_EQ(p.sum("meshdeploy_rollout_hosts_in_window").value_or(0), 0);

  // The second runs all nine: the stop side now has the first revision's scripts.
  deploy_webapp();
  p = scrape_until([](const prom_text& x) {
    return x.sum("meshdeploy_deployments", {{"status", "Succeeded"}}) == 2 &&
           x.sum("meshdeploy_hook_duration_seconds_count").value_or(0) >= 15;
  });
  EXPECT_EQ(p.sum("meshdeploy_deployments", {{"status", "Succeeded"}}), 2);
  EXPECT_EQ(p.sum("meshdeploy_deployments_finished_total", {{"status", "Succeeded"}}), 2);
  EXPECT_EQ(p.sum("meshdeploy_hook_duration_seconds_count"), 15);
  EXPECT_EQ(p.sum("meshdeploy_hook_duration_seconds_count", {{"event", "ApplicationStop"}}), 1);
  EXPECT_EQ(p.sum("meshdeploy_hook_runs_total"), 15);
  EXPECT_GT(*p.sum("meshdeploy_hook_duration_seconds_sum"), 0);

  // API latency by route pattern: the CLI posted records and read deployments; no id leaks into
  // a label.
  EXPECT_GE(p.sum("meshdeploy_api_request_duration_seconds_count",
                  {{"route", "/v1/records"}, {"method", "POST"}, {"code", "2xx"}})
                .value_or(0),
            4);
  EXPECT_GE(
      p.sum("meshdeploy_api_request_duration_seconds_count", {{"route", "/metrics"}}).value_or(0),
      1);
  for (const auto& s : p.samples) {
    if (s.name.rfind("meshdeploy_api_", 0) != 0) continue;
    for (const auto& [k, v] : s.labels) EXPECT_EQ(v.find("/d-"), std::string::npos) << v;
  }
}

TEST_F(MetricsTest, JsonLogHasOneObjectPerLineAndALinePerLifecycleEventThatRan) {
  deploy_webapp();
  std::istringstream log(read_file(node_->log_path()));
  std::map<std::string, int> events;  // event -> lines
  std::set<std::string> ids;          // deploymentId of the event lines
  int lines = 0;
  for (std::string line; std::getline(log, line);) {
    if (line.empty()) continue;
    ++lines;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not a JSON object: " << line;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
    EXPECT_EQ(j.value("host", ""), "host-1") << line;
    if (j.contains("event")) {
      ++events[j["event"].get<std::string>()];
      ids.insert(j.value("deploymentId", ""));
    }
  }
  EXPECT_GT(lines, 5);
  // The first deployment: DownloadBundle, Install and the six hooks of the new revision; the
  // stop-side events had nothing to run and are not logged.
  for (const char* e : {"DownloadBundle", "BeforeInstall", "Install", "AfterInstall",
                        "ApplicationStart", "ValidateService"}) {
    EXPECT_EQ(events[e], 1) << e;
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids.count(""), 0u);
}

}  // namespace
}  // namespace meshdeploy::test

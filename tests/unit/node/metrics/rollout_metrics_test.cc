#include "node/metrics/rollout_metrics.h"

#include "tests/support/prometheus_text.h"

#include <gtest/gtest.h>

namespace meshdeploy::node::metrics {
namespace {

using deploy::deployment_record;
using deploy::deployment_status;
using deploy::host_status;

constexpr deploy::unix_ms kStart = 1'000'000;

class RolloutMetricsTest : public ::testing::Test {
 protected:
  static deployment_record deployment(std::string id, deployment_status s, deploy::unix_ms created,
                                      std::uint64_t version = 1) {
    deployment_record d;
    d.id = std::move(id);
    d.application = "web";
    d.group = "prod";
    d.status = s;
    d.create_time = created;
    d.version = version;
    return d;
  }
  static deploy::host_progress host(std::string name, host_status s) {
    deploy::host_progress h;
    h.host = std::move(name);
    h.status = s;
    h.events = deploy::pending_lifecycle_events();
    return h;
  }
  // Marks event `name` of `h` ended with a script: `ms` long, outcome `code`.
  static void ran(deploy::host_progress& h, const std::string& name, host_status s,
                  deploy::unix_ms ms, std::string code = "Success") {
    for (auto& e : h.events) {
      if (e.name != name) continue;
      e.status = s;
      e.start_time = kStart + 10;
      e.end_time = kStart + 10 + ms;
      e.diag = deploy::diagnostics{std::move(code), "scripts/x.sh", "", ""};
    }
  }
  test::prom_text scrape() const {
    exposition e;
    m_.write(e);
    auto p = test::parse_prometheus_text(e.text());
    EXPECT_TRUE(p.problems.empty()) << e.text() << ::testing::PrintToString(p.problems);
    return p;
  }

  rollout_metrics m_{"host-1", kStart};
};

TEST_F(RolloutMetricsTest, EveryStatusIsListedAndCountsWhatIsKnown) {
  m_.resync({deployment("d-1", deployment_status::succeeded, kStart - 5000),
             deployment("d-2", deployment_status::failed, kStart - 4000),
             deployment("d-3", deployment_status::succeeded, kStart - 3000)});
  const auto p = scrape();
  for (const char* s : {"Created", "Queued", "InProgress", "Succeeded", "Failed", "Stopped"}) {
    EXPECT_TRUE(p.sum("meshdeploy_deployments", {{"status", s}})) << s;
  }
  EXPECT_EQ(p.sum("meshdeploy_deployments", {{"status", "Succeeded"}}), 2);
  EXPECT_EQ(p.sum("meshdeploy_deployments", {{"status", "Failed"}}), 1);
  EXPECT_EQ(p.sum("meshdeploy_deployments", {{"status", "InProgress"}}), 0);
  // Ended before this node started: known, not seen ending.
  EXPECT_EQ(p.sum("meshdeploy_deployments_finished_total"), 0);
  EXPECT_EQ(p.types.at("meshdeploy_deployments_finished_total"), "counter");
}

TEST_F(RolloutMetricsTest, ADeploymentSeenEndingCountsOnceByItsFinalStatus) {
  auto d = deployment("d-1", deployment_status::in_progress, kStart - 10, 1);
  m_.observe(d);
  d.status = deployment_status::succeeded;
  d.version = 2;
  m_.observe(d);
  d.version = 3;  // host rows settling after the end
  m_.observe(d);
  m_.resync({d});
  // Created after start and first seen already ended: still counted.
  m_.observe(deployment("d-2", deployment_status::stopped, kStart + 5));
  const auto p = scrape();
  EXPECT_EQ(p.sum("meshdeploy_deployments_finished_total", {{"status", "Succeeded"}}), 1);
  EXPECT_EQ(p.sum("meshdeploy_deployments_finished_total", {{"status", "Stopped"}}), 1);
  EXPECT_EQ(p.sum("meshdeploy_deployments_finished_total", {{"status", "Failed"}}), 0);
}

TEST_F(RolloutMetricsTest, AnOlderDocumentDoesNotUndoANewerOne) {
  auto open = deployment("d-1", deployment_status::in_progress, kStart + 1, 4);
  auto ended = open;
  ended.status = deployment_status::failed;
  ended.version = 5;
  m_.observe(open);
  m_.observe(ended);
  m_.resync({open});  // a list read before the change
  m_.observe(ended);
  const auto p = scrape();
  EXPECT_EQ(p.sum("meshdeploy_deployments_finished_total", {{"status", "Failed"}}), 1);
  EXPECT_EQ(p.sum("meshdeploy_deployments", {{"status", "Failed"}}), 1);
  EXPECT_EQ(p.sum("meshdeploy_deployments", {{"status", "InProgress"}}), 0);
}

TEST_F(RolloutMetricsTest, HostsInTheWindowPerGroupOfOpenDeployments) {
  auto a = deployment("d-1", deployment_status::in_progress, kStart);
  a.hosts = {host("host-1", host_status::in_progress), host("host-2", host_status::in_progress),
             host("host-3", host_status::pending)};
  auto b = deployment("d-2", deployment_status::in_progress, kStart);
  b.group = "canary \"eu\"";
  b.hosts = {host("host-4", host_status::in_progress), host("host-5", host_status::succeeded)};
  auto done = deployment("d-3", deployment_status::failed, kStart);
  done.hosts = {host("host-6", host_status::in_progress)};  // an ended one holds no window
  m_.resync({a, b, done});
  auto p = scrape();
  EXPECT_EQ(p.sum("meshdeploy_rollout_hosts_in_window", {{"group", "prod"}}), 2);
  EXPECT_EQ(p.sum("meshdeploy_rollout_hosts_in_window", {{"group", "canary \"eu\""}}), 1);
  a.status = deployment_status::succeeded;
  a.version = 2;
  m_.observe(a);
  p = scrape();
  EXPECT_FALSE(p.sum("meshdeploy_rollout_hosts_in_window", {{"group", "prod"}}));
  // Forgotten after pruning.
  m_.resync({b});
  p = scrape();
  EXPECT_EQ(p.sum("meshdeploy_deployments"), 1);
}

TEST_F(RolloutMetricsTest, HooksThisHostRanAreObservedOnceWithTheirDurationAndOutcome) {
  auto d = deployment("d-1", deployment_status::in_progress, kStart + 1, 1);
  auto me = host("host-1", host_status::in_progress);
  auto other = host("host-2", host_status::in_progress);
  ran(me, "BeforeInstall", host_status::succeeded, 300);
  ran(other, "BeforeInstall", host_status::succeeded, 9000);  // not this node's hook
  d.hosts = {me, other};
  m_.observe(d);
  ran(me, "AfterInstall", host_status::succeeded, 2000);
  ran(me, "ApplicationStart", host_status::failed, 40'000, "ScriptTimedOut");
  // Install is the agent's own event; one without a script (no diagnostics) ran no hook.
  for (auto& e : me.events) {
    if (e.name == "Install") e.status = host_status::succeeded;
    if (e.name == "Install") e.diag = deploy::diagnostics{"Success", "", "", ""};
    if (e.name == "ApplicationStop") e.status = host_status::succeeded;
  }
  d.hosts = {me, other};
  d.version = 2;
  m_.observe(d);
  d.version = 3;
  m_.observe(d);  // seen again: no double count
  const auto p = scrape();
  EXPECT_EQ(p.sum("meshdeploy_hook_duration_seconds_count"), 3);
  EXPECT_EQ(p.sum("meshdeploy_hook_duration_seconds_count", {{"event", "BeforeInstall"}}), 1);
  EXPECT_DOUBLE_EQ(*p.sum("meshdeploy_hook_duration_seconds_sum", {{"event", "BeforeInstall"}}),
                   0.3);
  EXPECT_EQ(p.sum("meshdeploy_hook_duration_seconds_bucket",
                  {{"event", "ApplicationStart"}, {"le", "30"}}),
            0);
  EXPECT_EQ(p.sum("meshdeploy_hook_duration_seconds_bucket",
                  {{"event", "ApplicationStart"}, {"le", "60"}}),
            1);
  EXPECT_EQ(p.sum("meshdeploy_hook_runs_total", {{"outcome", "Success"}}), 2);
  EXPECT_EQ(p.sum("meshdeploy_hook_runs_total",
                  {{"event", "ApplicationStart"}, {"outcome", "ScriptTimedOut"}}),
            1);
  EXPECT_FALSE(p.sum("meshdeploy_hook_runs_total", {{"event", "Install"}}));
}

TEST_F(RolloutMetricsTest, HooksThatEndedBeforeTheNodeStartedAreNotCounted) {
  auto d = deployment("d-1", deployment_status::in_progress, kStart - 100'000, 1);
  auto me = host("host-1", host_status::in_progress);
  ran(me, "BeforeInstall", host_status::succeeded, 100);
  d.hosts = {me};
  m_.resync({d});
  ran(me, "AfterInstall", host_status::failed, 100, "something a peer made up");
  d.hosts = {me};
  d.version = 2;
  m_.observe(d);
  const auto p = scrape();
  EXPECT_EQ(p.sum("meshdeploy_hook_duration_seconds_count"), 1);
  // An outcome outside the agent's codes is bounded to UnknownError.
  EXPECT_EQ(
      p.sum("meshdeploy_hook_runs_total", {{"event", "AfterInstall"}, {"outcome", "UnknownError"}}),
      1);
}

TEST_F(RolloutMetricsTest, ChangedIdsAreHandedOverOnce) {
  m_.mark_changed("d-2");
  m_.mark_changed("d-1");
  m_.mark_changed("d-2");
  EXPECT_EQ(m_.take_changed(), (std::vector<std::string>{"d-1", "d-2"}));
  EXPECT_TRUE(m_.take_changed().empty());
}

}  // namespace
}  // namespace meshdeploy::node::metrics

// The lifecycle executor with real RocksDB, real bundles and real hook
// processes in temp dirs.
#include "node/agent/executor.h"

#include "node/agent/revision.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <fstream>
#include <signal.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace meshdeploy::agent {
namespace {

namespace fs = std::filesystem;
using deploy::host_status;
using namespace std::chrono_literals;

struct recorded {
  lifecycle_event event;
  host_status status;
  std::optional<deploy::diagnostics> diag;
};

class recording_sink : public progress_sink {
 public:
  void event_started(lifecycle_event e, deploy::unix_ms) override { started.push_back(e); }
  void event_finished(lifecycle_event e, host_status s, const std::optional<deploy::diagnostics>& d,
                      deploy::unix_ms) override {
    finished.push_back({e, s, d});
  }
  const recorded* find(lifecycle_event e) const {
    for (const auto& r : finished) {
      if (r.event == e) return &r;
    }
    return nullptr;
  }
  std::vector<lifecycle_event> started;
  std::vector<recorded> finished;
};

class ExecutorTest : public ::testing::Test {
 protected:
  ExecutorTest() {
    db_ =
        storage::db::open({dir_ / "db", {journal::column_family, host_state_store::column_family}})
            .value();
    agent_options o;
    o.data_dir = dir_ / "data";
    o.install_root = dir_ / "root";
    o.keep_deployments = 2;
    o.kill_grace = 500ms;
    exec_ = std::make_unique<executor>(*db_, o);
  }

  // Writes a revision directory: appspec text plus scripts (name -> body).
  fs::path revision(const std::string& name, const std::string& appspec,
                    const std::vector<std::pair<std::string, std::string>>& scripts,
                    const std::vector<std::pair<std::string, std::string>>& files = {}) {
    const fs::path root = dir_ / "src" / name;
    test::write_file(root / "appspec.yml", appspec);
    for (const auto& [path, body] : scripts)
      test::write_file(root / path, "#!/bin/sh\n" + body, 0755);
    for (const auto& [path, body] : files) test::write_file(root / path, body);
    return root;
  }

  run_result deploy(const fs::path& source, const std::string& id, recording_sink& sink,
                    bool ignore_stop_failures = false) {
    auto bundle = prepare_revision(source, dir_ / "bundles" / id);
    EXPECT_TRUE(bundle) << bundle.error().message;
    local_deployment d{id,
                       "app",
                       "grp",
                       "group-1",
                       bundle.value().id,
                       bundle.value().archive,
                       std::nullopt,
                       ignore_stop_failures};
    std::atomic<bool> stop{false};
    return exec_->run(d, sink, stop);
  }

  std::string trace() { return test::read_file(dir_ / "trace"); }
  std::string trace_cmd(const std::string& what) {
    return "echo \"" + what + "\" >> " + (dir_ / "trace").string() + "\n";
  }

  test::temp_dir dir_{"meshdeploy-exec"};
  std::unique_ptr<storage::db> db_;
  std::unique_ptr<executor> exec_;
};

constexpr const char* kAllHooks = R"(version: 0.0
os: linux
hooks:
  BeforeBlockTraffic: [{location: h.sh}]
  AfterBlockTraffic: [{location: h.sh}]
  ApplicationStop: [{location: h.sh}]
  BeforeInstall: [{location: h.sh}]
  AfterInstall: [{location: h.sh}]
  ApplicationStart: [{location: h.sh}]
  ValidateService: [{location: h.sh}]
  BeforeAllowTraffic: [{location: h.sh}]
  AfterAllowTraffic: [{location: h.sh}]
)";

TEST_F(ExecutorTest, HooksRunInCodeDeployOrderWithTheirEnvironment) {
  const auto src = revision(
      "r1", kAllHooks,
      {{"h.sh",
        trace_cmd("$LIFECYCLE_EVENT $DEPLOYMENT_ID $APPLICATION_NAME "
                  "$DEPLOYMENT_GROUP_NAME $DEPLOYMENT_GROUP_ID $MESHDEPLOY_INSTALL_ROOT")}});
  recording_sink s1;
  ASSERT_EQ(deploy(src, "d-1", s1).status, host_status::succeeded);
  const std::string root = (dir_ / "root").string();
  // First deployment: no previous revision, so the stop/block hooks have nothing to run.
  EXPECT_EQ(trace(), "BeforeInstall d-1 app grp group-1 " + root + "\n" +
                         "AfterInstall d-1 app grp group-1 " + root + "\n" +
                         "ApplicationStart d-1 app grp group-1 " + root + "\n" +
                         "ValidateService d-1 app grp group-1 " + root + "\n" +
                         "BeforeAllowTraffic d-1 app grp group-1 " + root + "\n" +
                         "AfterAllowTraffic d-1 app grp group-1 " + root + "\n");
  EXPECT_EQ(s1.find(lifecycle_event::application_stop)->status, host_status::succeeded);
  EXPECT_EQ(s1.find(lifecycle_event::block_traffic)->status, host_status::skipped);

  fs::remove(dir_ / "trace");
  recording_sink s2;
  ASSERT_EQ(deploy(src, "d-2", s2).status, host_status::succeeded);
  std::istringstream lines(trace());
  std::vector<std::string> events;
  for (std::string l; std::getline(lines, l);) events.push_back(l.substr(0, l.find(' ')));
  EXPECT_EQ(events, (std::vector<std::string>{"BeforeBlockTraffic", "AfterBlockTraffic",
                                              "ApplicationStop", "BeforeInstall", "AfterInstall",
                                              "ApplicationStart", "ValidateService",
                                              "BeforeAllowTraffic", "AfterAllowTraffic"}));
  // Every event was reported finished exactly once, in order (DownloadBundle first).
  ASSERT_EQ(s2.finished.size(), 13u);
  EXPECT_EQ(s2.finished[0].event, lifecycle_event::download_bundle);
}

TEST_F(ExecutorTest, ApplicationStopRunsTheLastSuccessfulRevisionsScript) {
  const char* spec = "version: 0.0\nos: linux\nhooks:\n  ApplicationStop: [{location: stop.sh}]\n";
  recording_sink s;
  ASSERT_EQ(deploy(revision("a", spec, {{"stop.sh", trace_cmd("stop-from-A")}}), "d-a", s).status,
            host_status::succeeded);
  ASSERT_EQ(deploy(revision("b", spec, {{"stop.sh", trace_cmd("stop-from-B")}}), "d-b", s).status,
            host_status::succeeded);
  EXPECT_EQ(trace(), "stop-from-A\n");
  // A failed deployment does not become "the last successful revision".
  const char* failing =
      "version: 0.0\nos: linux\nhooks:\n  ApplicationStop: [{location: stop.sh}]\n"
      "  ValidateService: [{location: v.sh}]\n";
  ASSERT_EQ(
      deploy(revision("c", failing, {{"stop.sh", trace_cmd("stop-from-C")}, {"v.sh", "exit 1\n"}}),
             "d-c", s)
          .status,
      host_status::failed);
  ASSERT_EQ(deploy(revision("d", spec, {{"stop.sh", trace_cmd("stop-from-D")}}), "d-d", s).status,
            host_status::succeeded);
  EXPECT_EQ(trace(), "stop-from-A\nstop-from-B\nstop-from-B\n");
}

TEST_F(ExecutorTest, RedeployRemovesWhatThePreviousDeploymentInstalled) {
  const char* spec = "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: /srv/app\n";
  recording_sink s;
  ASSERT_EQ(
      deploy(revision("v1", spec, {}, {{"a.txt", "1"}, {"old/only.txt", "x"}}), "d-1", s).status,
      host_status::succeeded);
  EXPECT_TRUE(fs::exists(dir_ / "root/srv/app/old/only.txt"));
  ASSERT_EQ(deploy(revision("v2", spec, {}, {{"a.txt", "2"}}), "d-2", s).status,
            host_status::succeeded);
  EXPECT_EQ(test::read_file(dir_ / "root/srv/app/a.txt"), "2");
  EXPECT_FALSE(fs::exists(dir_ / "root/srv/app/old/only.txt"));
  EXPECT_FALSE(fs::exists(dir_ / "root/srv/app/old")) << "empty directories it created go too";
}

TEST_F(ExecutorTest, DisallowConflictFailsInstallWithTheFix) {
  test::write_file(dir_ / "root/srv/app/a.txt", "not ours");
  const char* spec =
      "version: 0.0\nos: linux\nfiles:\n  - source: a.txt\n    destination: /srv/app\n";
  recording_sink s;
  auto r = deploy(revision("v1", spec, {}, {{"a.txt", "1"}}), "d-1", s);
  ASSERT_EQ(r.status, host_status::failed);
  const auto* install = s.find(lifecycle_event::install);
  ASSERT_TRUE(install && install->diag);
  EXPECT_NE(install->diag->message.find("a.txt"), std::string::npos) << install->diag->message;
  EXPECT_EQ(test::read_file(dir_ / "root/srv/app/a.txt"), "not ours");
}

TEST_F(ExecutorTest, FailureSkipsEveryLaterEvent) {
  const char* spec =
      "version: 0.0\nos: linux\nhooks:\n  AfterInstall: [{location: f.sh}]\n"
      "  ApplicationStart: [{location: never.sh}]\n";
  recording_sink s;
  auto r = deploy(
      revision("f", spec, {{"f.sh", "echo boom >&2\nexit 7\n"}, {"never.sh", trace_cmd("ran")}}),
      "d-f", s);
  EXPECT_EQ(r.status, host_status::failed);
  EXPECT_NE(r.message.find("AfterInstall"), std::string::npos) << r.message;
  const auto* f = s.find(lifecycle_event::after_install);
  ASSERT_TRUE(f && f->diag);
  EXPECT_EQ(f->diag->error_code, "ScriptFailed");
  EXPECT_NE(f->diag->log_tail.find("boom"), std::string::npos);
  EXPECT_EQ(s.find(lifecycle_event::application_start)->status, host_status::skipped);
  EXPECT_EQ(s.find(lifecycle_event::after_allow_traffic)->status, host_status::skipped);
  EXPECT_EQ(trace(), "");
}

TEST_F(ExecutorTest, IgnoreStopFailuresGoesOn) {
  const char* spec = "version: 0.0\nos: linux\nhooks:\n  ApplicationStop: [{location: stop.sh}]\n";
  recording_sink s;
  ASSERT_EQ(deploy(revision("a", spec, {{"stop.sh", "exit 1\n"}}), "d-a", s).status,
            host_status::succeeded);  // first deployment: nothing to stop
  recording_sink s2;
  EXPECT_EQ(deploy(revision("b", spec, {{"stop.sh", "exit 0\n"}}), "d-b", s2).status,
            host_status::failed);
  recording_sink s3;
  EXPECT_EQ(deploy(revision("b", spec, {{"stop.sh", "exit 0\n"}}), "d-c", s3, true).status,
            host_status::succeeded);
  EXPECT_EQ(s3.find(lifecycle_event::application_stop)->status, host_status::failed);
}

TEST_F(ExecutorTest, TamperedBundleFailsAtDownloadAndChangesNothing) {
  const char* spec =
      "version: 0.0\nos: linux\nfiles:\n  - source: a.txt\n    destination: /srv/app\n";
  auto bundle = prepare_revision(revision("t", spec, {}, {{"a.txt", "1"}}), dir_ / "b").value();
  std::ofstream(bundle.archive, std::ios::app) << "tampered";
  recording_sink s;
  std::atomic<bool> stop{false};
  auto r =
      exec_->run({"d-t", "app", "grp", "group-1", bundle.id, bundle.archive, {}, false}, s, stop);
  EXPECT_EQ(r.status, host_status::failed);
  EXPECT_EQ(s.find(lifecycle_event::download_bundle)->status, host_status::failed);
  EXPECT_EQ(s.find(lifecycle_event::install)->status, host_status::skipped);
  EXPECT_FALSE(fs::exists(dir_ / "root/srv/app"));
}

TEST_F(ExecutorTest, InvalidAppspecFailsAtDownloadNamingTheLine) {
  recording_sink s;
  auto r =
      deploy(revision("bad", "version: 0.0\nos: linux\nhooks:\n  Bogus: []\n", {}), "d-bad", s);
  EXPECT_EQ(r.status, host_status::failed);
  const auto* d = s.find(lifecycle_event::download_bundle);
  ASSERT_TRUE(d && d->diag);
  EXPECT_NE(d->diag->message.find("Bogus"), std::string::npos) << d->diag->message;
  EXPECT_NE(d->diag->message.find(":4"), std::string::npos) << d->diag->message;
}

TEST_F(ExecutorTest, RecoveryKillsLeftoverHookProcessesAndFailsHonestly) {
  // A process left behind by a hook of a node that was killed.
  const pid_t child = ::fork();
  if (child == 0) {
    ::setsid();
    char env[] = "MESHDEPLOY_HOOK_TOKEN=d-x-AfterInstall-0-feed";
    char* envp[] = {env, nullptr};
    char* argv[] = {const_cast<char*>("/bin/sleep"), const_cast<char*>("100"), nullptr};
    ::execve(argv[0], argv, envp);
    ::_exit(127);
  }
  std::this_thread::sleep_for(100ms);  // let exec happen so /proc shows the new environment
  journal j(*db_);
  ASSERT_TRUE(j.record({"d-x",
                        "group-1",
                        journal_phase::entered,
                        "AfterInstall",
                        "slow.sh",
                        "d-x-AfterInstall-0-feed",
                        {}}));
  ASSERT_TRUE(j.record({"d-y", "group-1", journal_phase::finished, {}, {}, {}, "Succeeded"}));

  auto rec = exec_->recover();
  ASSERT_TRUE(rec) << rec.error().message;
  ASSERT_EQ(rec.value().size(), 1u);
  const auto& r = rec.value()[0];
  EXPECT_EQ(r.deployment_id, "d-x");
  EXPECT_TRUE(r.entered);
  EXPECT_EQ(r.event, "AfterInstall");
  EXPECT_NE(r.message.find("slow.sh"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("not rerun"), std::string::npos) << r.message;
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  // Recorded as finished: a second start finds nothing to recover.
  EXPECT_TRUE(exec_->recover().value().empty());
  EXPECT_TRUE(exec_->host_state().load("group-1").value().last_failed);
}

TEST_F(ExecutorTest, PruneKeepsNewestDeploymentsAndTheLastSuccess) {
  const char* ok_spec = "version: 0.0\nos: linux\n";
  const char* bad_spec = "version: 0.0\nos: linux\nhooks:\n  ValidateService: [{location: v.sh}]\n";
  recording_sink s;
  ASSERT_EQ(deploy(revision("ok", ok_spec, {}), "d-1", s).status, host_status::succeeded);
  for (const char* id : {"d-2", "d-3", "d-4"}) {
    ASSERT_EQ(deploy(revision("bad", bad_spec, {{"v.sh", "exit 1\n"}}), id, s).status,
              host_status::failed);
  }
  EXPECT_TRUE(fs::exists(exec_->deployment_dir("group-1", "d-1"))) << "last success is kept";
  EXPECT_FALSE(fs::exists(exec_->deployment_dir("group-1", "d-2")));
  EXPECT_TRUE(fs::exists(exec_->deployment_dir("group-1", "d-3")));
  EXPECT_TRUE(fs::exists(exec_->deployment_dir("group-1", "d-4")));
}

TEST(FilterLogTest, CutsAtEventMarkers) {
  const std::string log =
      "[t] LifecycleEvent - BeforeInstall\nb1\n[t] LifecycleEvent - AfterInstall\na1\na2\n"
      "[t] LifecycleEvent - ApplicationStart\ns1\n";
  EXPECT_EQ(filter_log(log, "AfterInstall"), "[t] LifecycleEvent - AfterInstall\na1\na2\n");
  EXPECT_EQ(filter_log(log, ""), log);
  EXPECT_EQ(filter_log(log, "ValidateService"), "");
}

}  // namespace
}  // namespace meshdeploy::agent

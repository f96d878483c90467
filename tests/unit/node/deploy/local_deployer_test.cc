// Recovery of deployment status documents after a crash, with a real
// registry and journal in a real RocksDB.
#include "node/deploy/local_deployer.h"

#include "node/agent/host_state.h"
#include "node/agent/journal.h"
#include "storage/db.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

namespace meshdeploy::deploy {
namespace {

class LocalDeployerTest : public ::testing::Test {
 protected:
  LocalDeployerTest() {
    auto families = registry::column_families();
    families.push_back(agent::journal::column_family);
    families.push_back(agent::host_state_store::column_family);
    for (auto& f : records::store::column_families()) families.push_back(f);
    db_ = storage::db::open({dir_ / "db", families}).value();
    store_ = records::store::open(*db_).value();
    reg_ = std::make_unique<registry>(*db_, *store_, dir_ / "revisions");
    agent::agent_options o;
    o.data_dir = dir_.path();
    o.install_root = dir_ / "root";
    exec_ = std::make_unique<agent::executor>(*db_, o);
    deployer_ = std::make_unique<local_deployer>(*reg_, *exec_, host_identity{"h1", {}});
  }

  // A deployment the node was running when it died: two events done, one running.
  deployment_record in_flight(const std::string& id) {
    deployment_record d;
    d.id = id;
    d.application = "web";
    d.group = "prod";
    d.group_id = "g1";
    d.status = deployment_status::in_progress;
    d.create_time = now_ms();
    host_progress h{"h1", host_status::in_progress, {}};
    h.events = {{"DownloadBundle", host_status::succeeded, 1, 2, {}},
                {"AfterInstall", host_status::in_progress, 3, 0, {}},
                {"ApplicationStart", host_status::pending, 0, 0, {}}};
    d.hosts.push_back(h);
    EXPECT_TRUE(reg_->put_deployment(d));
    return d;
  }

  test::temp_dir dir_{"meshdeploy-deployer"};
  std::unique_ptr<storage::db> db_;
  std::unique_ptr<records::store> store_;
  std::unique_ptr<registry> reg_;
  std::unique_ptr<agent::executor> exec_;
  std::unique_ptr<local_deployer> deployer_;
};

TEST_F(LocalDeployerTest, InterruptedHookFailsTheHostAndSkipsTheRest) {
  in_flight("d-1");
  agent::journal j(*db_);
  ASSERT_TRUE(j.record({"d-1",
                        "g1",
                        agent::journal_phase::entered,
                        "AfterInstall",
                        "slow.sh",
                        "d-1-AfterInstall-0-aa",
                        {}}));
  ASSERT_TRUE(deployer_->recover());
  auto d = reg_->get_deployment("d-1").value();
  EXPECT_EQ(d.status, deployment_status::failed);
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->code, "DEPLOYMENT_INTERRUPTED");
  EXPECT_EQ(d.hosts[0].status, host_status::failed);
  EXPECT_EQ(d.hosts[0].events[1].status, host_status::failed);
  ASSERT_TRUE(d.hosts[0].events[1].diag);
  EXPECT_EQ(d.hosts[0].events[1].diag->script_name, "slow.sh");
  EXPECT_EQ(d.hosts[0].events[2].status, host_status::skipped);
}

TEST_F(LocalDeployerTest, HostThatFinishedBeforeTheCrashKeepsItsResult) {
  in_flight("d-2");
  agent::journal j(*db_);
  ASSERT_TRUE(j.record({"d-2", "g1", agent::journal_phase::finished, {}, {}, {}, "Succeeded"}));
  ASSERT_TRUE(deployer_->recover());
  auto d = reg_->get_deployment("d-2").value();
  EXPECT_EQ(d.status, deployment_status::succeeded);
  EXPECT_EQ(d.hosts[0].status, host_status::succeeded);
  EXPECT_EQ(d.hosts[0].events[0].status, host_status::succeeded);
  EXPECT_EQ(d.hosts[0].events[1].status, host_status::unknown) << "its end was never recorded";
}

TEST_F(LocalDeployerTest, DeploymentWithNoJournalEntryIsFailedAsInterrupted) {
  in_flight("d-3");
  ASSERT_TRUE(deployer_->recover());
  auto d = reg_->get_deployment("d-3").value();
  EXPECT_EQ(d.status, deployment_status::failed);
  EXPECT_EQ(d.error->code, "DEPLOYMENT_INTERRUPTED");
}

TEST_F(LocalDeployerTest, DeploymentIdsLookLikeCodeDeploys) {
  for (int i = 0; i < 100; ++i) {
    const std::string id = new_deployment_id();
    ASSERT_EQ(id.size(), 11u);
    EXPECT_EQ(id.substr(0, 2), "d-");
    for (char c : id.substr(2)) EXPECT_TRUE((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) << id;
  }
}

}  // namespace
}  // namespace meshdeploy::deploy

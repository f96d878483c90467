// Deployments across a real mesh when things go wrong or change (docs/rollout.md): kill -9 of a
// host inside its hook, kill -9 of the node the deployment was submitted through, automatic
// rollback, an operator excluding a dead host, and a host that joins mid-way catching up with
// the group's last good revision.
#include "tests/integ/mesh_fixture.h"

namespace meshdeploy::test {
namespace {

using MeshRecoveryTest = MeshFixture;

// A node started on an empty data dir with a seed stays unsettled (enters and votes nothing)
// until its records match a peer's or --catch-up-delay passed, and says so in its data dir so
// that a restart before then does not take the half-filled data dir as settled (the rollout
// simulator, seed 2510: a host entered a deployment twice). Here no peer answers, so it settles
// by the delay.
TEST(SettlingMarkerTest, AnEmptyDataDirStaysUnsettledAcrossARestartUntilItSettles) {
  temp_dir dir{"meshdeploy-settling"};
  const fs::path marker = dir / "data" / "settling";
  node_process n("lone", dir / "data", dir / "root", {"role=web"},
                 {"--join", "127.0.0.1:9", "--catch-up-delay", "15"});
  ASSERT_FALSE(n.api().empty()) << read_file(n.log_path());
  EXPECT_TRUE(fs::exists(marker));
  n.kill_hard();
  ASSERT_TRUE(n.start()) << read_file(n.log_path());
  EXPECT_TRUE(fs::exists(marker)) << "a restart before settling must not count as settled";
  for (int i = 0; i < 240 && fs::exists(marker); ++i) std::this_thread::sleep_for(250ms);
  EXPECT_FALSE(fs::exists(marker)) << read_file(n.log_path());
  EXPECT_NE(read_file(n.log_path()).find("did not settle within the catch-up delay"),
            std::string::npos);
  // Settled: a later start neither writes it again nor waits.
  n.kill_hard();
  ASSERT_TRUE(n.start()) << read_file(n.log_path());
  EXPECT_FALSE(fs::exists(marker));
}

TEST_F(MeshRecoveryTest, KillNineOfAHostInsideItsHookEndsHonestlyAfterRestart) {
  // The first host to enter sleeps inside BeforeInstall: kill -9 its node there.
  const auto [id, victim] = deploy_and_hold_first("k9", "OneAtATime");
  ASSERT_GE(victim, 0) << "no host entered";
  nodes_[victim]->kill_hard();
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(nodes_[victim]->start()) << read_file(nodes_[victim]->log_path());
  const int via = (victim + 3) % kNodes;
  json d = status_until(via, id, [](const json& doc) { return settled(doc); });
  ASSERT_TRUE(ended(d)) << d.dump(2);
  // The victim kept its token (it failed inside the window), so OneAtATime stopped there.
  EXPECT_EQ(d["status"], "Failed") << d.dump(2);
  EXPECT_EQ(d["errorInformation"]["code"], "DEPLOYMENT_INTERRUPTED") << d.dump(2);
  const std::string victim_name = "host-" + std::to_string(victim + 1);
  bool reported = false;
  for (const auto& h : d["hosts"]) {
    if (h["host"] != victim_name) continue;
    EXPECT_EQ(h["status"], "Failed") << h.dump(2);
    for (const auto& e : h["events"]) {
      if (e["name"] == "BeforeInstall") {
        EXPECT_EQ(e["status"], "Failed") << e.dump(2);
        reported =
            e["diagnostics"]["message"].get<std::string>().starts_with("DEPLOYMENT_INTERRUPTED");
      }
    }
  }
  EXPECT_TRUE(reported) << d.dump(2);
  EXPECT_LE(max_overlap(), 1);
  EXPECT_EQ(entered().size(), 1u) << "a host entered while the victim held the token";
}

// Chaos soak seed 21: killed mid-hook, then restarted on a wiped data dir (its key kept, as a
// reinstalled host would). Its journal is gone, but its own "entered" record comes back from
// its peers: it ends that run interrupted and never runs the hook again.
TEST_F(MeshRecoveryTest, KillNineMidHookWithAWipedDataDirNeverRerunsTheHook) {
  const auto [id, victim] = deploy_and_hold_first("k9w", "OneAtATime");
  ASSERT_GE(victim, 0) << "no host entered";
  // Its "entered" record must have left the node before the kill (it is published before the
  // first hook starts; give it a moment to reach a peer).
  const std::string victim_name = "host-" + std::to_string(victim + 1);
  const int via = (victim + 3) % kNodes;
  status_until(via, id, [&](const json& doc) {
    for (const auto& h : doc["hosts"]) {
      if (h["host"] == victim_name && h["status"] == "InProgress") return true;
    }
    return false;
  });
  nodes_[victim]->kill_hard();
  for (const auto& entry : fs::directory_iterator(nodes_[victim]->data_dir())) {
    if (entry.path().filename() != "node.key") fs::remove_all(entry.path());
  }
  // A reinstalled host is told where its cluster is (node 1 has no --join, and its peer snapshot
  // went with the data dir): one live member's gossip address as its only seed.
  {
    const int other = (victim + 1) % kNodes;
    const std::string seed = read_file(nodes_[other]->data_dir() / "gossip.addr");
    std::ofstream(nodes_[victim]->data_dir() / "peers") << seed.substr(0, seed.find('\n')) << "\n";
  }
  ASSERT_TRUE(nodes_[victim]->start()) << read_file(nodes_[victim]->log_path());
  // Up to 150 s: in one run of four the victim's final record came ~85 s after its restart
  // (cause not analysed; the other runs settled in under 10 s).
  json d = status_until(
      via, id, [](const json& doc) { return settled(doc); }, 150s);
  ASSERT_TRUE(ended(d)) << d.dump(2);
  EXPECT_EQ(d["status"], "Failed") << d.dump(2);
  EXPECT_EQ(d["errorInformation"]["code"], "DEPLOYMENT_INTERRUPTED") << d.dump(2);
  for (const auto& h : d["hosts"]) {
    if (h["host"] == victim_name) {
      EXPECT_EQ(h["status"], "Failed") << h.dump(2);
    }
  }
  // One enter stamp in all: the victim's hook ran once, and nobody entered beside it.
  EXPECT_EQ(entered(), std::vector<int>{victim}) << read_file(nodes_[victim]->log_path());
  EXPECT_LE(max_overlap(), 1);
}

TEST_F(MeshRecoveryTest, KillNineOfTheSubmittingNodeDoesNotStopTheRollout) {
  ASSERT_EQ(cli(0, {"group", "create", "--app", "web", "--name", "sub", "--tag", "role=web",
                    "--config", "HalfAtATime"})
                .exit_code,
            0);
  auto r =
      cli(0, {"deploy", "--app", "web", "--group", "sub", "--source", (dir_ / "rev").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = r.out.substr(0, r.out.find('\n'));
  // Once another host holds the bundle (the submitter was its only seed), the submitter dies
  // mid-rollout. (A host whose turn comes while no live node holds the bundle fails at
  // DownloadBundle and keeps its token: docs/rollout.md.)
  status_until(
      5, id,
      [](const json& d) {
        for (const auto& h : d["hosts"]) {
          if (h["host"] == "host-1") continue;
          for (const auto& e : h["events"]) {
            if (e["name"] == "DownloadBundle" && e["status"] == "Succeeded") return true;
          }
        }
        return false;
      },
      30s);
  nodes_[0]->kill_hard();
  // Everyone else finishes without it: it holds at most one of the K = 4 tokens.
  json d = status_until(5, id, [](const json& doc) {
    for (const auto& h : doc["hosts"]) {
      if (h["host"] != "host-1" && h["status"] != "Succeeded") return false;
    }
    return true;
  });
  for (const auto& h : d["hosts"]) {
    if (h["host"] != "host-1") {
      EXPECT_EQ(h["status"], "Succeeded") << d.dump(2);
    }
  }
  // Back with its data dir, the submitter settles its own part; the deployment ends.
  ASSERT_TRUE(nodes_[0]->start()) << read_file(nodes_[0]->log_path());
  d = status_until(5, id, [](const json& doc) { return ended(doc); });
  EXPECT_TRUE(ended(d)) << d.dump(2) << read_file(nodes_[0]->log_path());
  EXPECT_LE(max_overlap(), kNodes / 2);
}

TEST_F(MeshRecoveryTest, ExcludingADeadHostFreesItsTokenAndTheRolloutFinishes) {
  // 7 of 8 healthy: K = 1 and one failure tolerated.
  ASSERT_EQ(cli(0, {"config", "create", "SevenOfEight", "--min-healthy", "7"}).exit_code, 0);
  const auto [id, victim] = deploy_and_hold_first("ex", "SevenOfEight");
  ASSERT_GE(victim, 0) << "no host entered";
  nodes_[victim]->kill_hard();  // and it stays down: it holds the only token
  const int via = (victim + 2) % kNodes;
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(entered().size(), 1u) << "a host entered while the dead one held the token";
  // The CLI refuses to fence what is not a target.
  EXPECT_EQ(cli(via, {"exclude", id, "--host", "nobody"}).exit_code, 2);
  const std::string victim_name = "host-" + std::to_string(victim + 1);
  auto x = cli(via, {"exclude", id, "--host", victim_name});
  ASSERT_EQ(x.exit_code, 0) << x.err;
  json d = status_until(via, id, [](const json& doc) { return settled(doc); });
  EXPECT_EQ(d["status"], "Succeeded") << d.dump(2);
  for (const auto& h : d["hosts"]) {
    EXPECT_EQ(h["status"], h["host"] == victim_name ? "Unknown" : "Succeeded") << h.dump(2);
  }
  // Besides the fenced host (whose orphaned hook may still run: its node never came back), at
  // most K = 1 was ever inside.
  EXPECT_LE(max_overlap(root(victim).string()), 1);
  // Excluding a host that already succeeded is refused (it would count as failed).
  std::string done_host;
  for (const auto& h : d["hosts"]) {
    if (h["status"] == "Succeeded") done_host = h["host"];
  }
  EXPECT_EQ(cli(via, {"exclude", id, "--host", done_host}).exit_code, 2);
}

TEST_F(MeshRecoveryTest, AFailedDeploymentIsRolledBackAutomatically) {
  ASSERT_EQ(cli(0, {"group", "create", "--app", "web", "--name", "ar", "--tag", "role=web",
                    "--config", "AllAtOnce", "--auto-rollback"})
                .exit_code,
            0);
  auto good = deploy_existing("ar");
  ASSERT_EQ(good["status"], "Succeeded") << good.dump(2);
  // A second revision whose ValidateService fails everywhere.
  const fs::path bad_rev = dir_ / "rev-bad";
  fs::create_directories(bad_rev);
  fs::copy(dir_ / "rev", bad_rev,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::ofstream(bad_rev / "content" / "hello.txt") << "v2\n";
  std::ofstream(bad_rev / "scripts" / "leave.sh") << "#!/bin/sh\necho broken on purpose\nexit 3\n";
  fs::permissions(bad_rev / "scripts" / "leave.sh", fs::perms::owner_all, fs::perm_options::add);
  auto bad = cli(0, {"deploy", "--app", "web", "--group", "ar", "--source", bad_rev.string(),
                     "--wait", "-o", "json"});
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  const json bad_doc = json::parse(bad.out, nullptr, false);
  ASSERT_TRUE(bad_doc.is_object()) << bad.out;
  const std::string bad_id = bad_doc["deploymentId"];
  // The nodes write the rollback: the failed deployment's status names it.
  json linked = status_until(3, bad_id, [](const json& d) {
    return d["rollbackInfo"].is_object() && d["rollbackInfo"]["rollbackDeploymentId"].is_string();
  });
  ASSERT_TRUE(linked["rollbackInfo"].is_object()) << linked.dump(2);
  const std::string rb_id = linked["rollbackInfo"]["rollbackDeploymentId"];
  json rb = status_until(6, rb_id, [](const json& d) { return ended(d); });
  EXPECT_EQ(rb["status"], "Succeeded") << rb.dump(2);
  EXPECT_EQ(rb["revision"], good["revision"]);
  EXPECT_EQ(rb["deploymentCreator"], "codeDeployRollback");
  EXPECT_EQ(rb["rollbackInfo"]["rollbackTriggeringDeploymentId"], bad_id);
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_EQ(read_file(root(i) / "srv" / "app" / "hello.txt"), "hello\n") << "host " << i + 1;
  }
  // Exactly one rollback, although several nodes wrote it.
  auto list = json::parse(
      cli(2, {"deployments", "--app", "web", "--group", "ar", "-o", "json"}).out, nullptr, false);
  int rollbacks = 0;
  for (const auto& x : list["deployments"])
    rollbacks += x["deploymentCreator"] == "codeDeployRollback";
  EXPECT_EQ(rollbacks, 1) << list.dump(2);
}

TEST_F(MeshRecoveryTest, AHostJoiningMidRolloutCatchesUpAfterItEnds) {
  ASSERT_EQ(cli(0, {"group", "create", "--app", "web", "--name", "cu", "--tag", "role=web",
                    "--config", "OneAtATime"})
                .exit_code,
            0);
  auto r = cli(0, {"deploy", "--app", "web", "--group", "cu", "--source", (dir_ / "rev").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = r.out.substr(0, r.out.find('\n'));
  // A new host with the group's tag joins while the rollout runs.
  for (int i = 0; i < 100 && entered().empty(); ++i) std::this_thread::sleep_for(50ms);
  std::string seed = read_file(nodes_[1]->data_dir() / "gossip.addr");
  const std::string name = "host-" + std::to_string(kNodes + 1);
  nodes_.push_back(std::make_unique<node_process>(
      name, dir_ / name / "data", dir_ / name / "root", std::vector<std::string>{"role=web"},
      std::vector<std::string>{"--keyring", (keys() / "keyring.txt").string(), "--admin-pub",
                               (keys() / "admin.pub").string(), "--grant",
                               (keys() / "tester.grant").string(), "--bind", "127.0.0.1:0",
                               "--gossip-profile", "local", "--catch-up-delay", "1", "--join",
                               seed.substr(0, seed.find('\n'))}));
  ASSERT_FALSE(nodes_.back()->api().empty()) << read_file(nodes_.back()->log_path());
  json d = status_until(2, id, [](const json& doc) { return ended(doc); });
  ASSERT_EQ(d["status"], "Succeeded") << d.dump(2);
  for (const auto& h : d["hosts"]) EXPECT_NE(h["host"], name) << "planned before it joined";
  // Its catch-up: a deployment of the same revision to it alone, shown like any other.
  json cu;
  for (int i = 0; i < 300; ++i) {
    auto list = json::parse(
        cli(0, {"deployments", "--app", "web", "--group", "cu", "-o", "json"}).out, nullptr, false);
    for (const auto& x : list["deployments"]) {
      if (x["deploymentCreator"] == "autoscaling" && ended(x)) cu = x;
    }
    if (cu.is_object()) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(cu.is_object()) << read_file(nodes_.back()->log_path());
  EXPECT_EQ(cu["status"], "Succeeded") << cu.dump(2);
  EXPECT_EQ(cu["revision"], d["revision"]);
  ASSERT_EQ(cu["hosts"].size(), 1u);
  EXPECT_EQ(cu["hosts"][0]["host"], name);
  EXPECT_EQ(read_file(dir_ / name / "root" / "srv" / "app" / "hello.txt"), "hello\n");
  // No cascade: the other hosts took part in `id`, so the catch-up being the group's newest
  // success must not make them catch up in turn (each one the next one's reason; the chaos
  // harness found that). They look at every tick; 4 s is many ticks.
  std::this_thread::sleep_for(4s);
  auto list = json::parse(
      cli(0, {"deployments", "--app", "web", "--group", "cu", "-o", "json"}).out, nullptr, false);
  int catch_ups = 0;
  for (const auto& x : list["deployments"]) catch_ups += x["deploymentCreator"] == "autoscaling";
  EXPECT_EQ(catch_ups, 1) << list.dump(2);
}

}  // namespace
}  // namespace meshdeploy::test

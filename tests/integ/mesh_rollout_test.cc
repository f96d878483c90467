// Deployments across a real mesh of `meshdeploy node run` processes on loopback, each with its
// own data dir and install root. The hooks append enter/leave stamps (CLOCK_MONOTONIC, through
// /proc/uptime's clock) to one shared file, and the test computes the true overlap from it
// instead of trusting the nodes' reports: OneAtATime <= 1, HalfAtATime <= N/2, 75% healthy <= 2,
// AllAtOnce all. Submitted through node 1, watched through node 6. Also: a failing host under
// OneAtATime and under HalfAtATime, stop through another node, rollback, concurrent submissions.
#include "tests/integ/mesh_fixture.h"

namespace meshdeploy::test {
namespace {

using MeshRolloutTest = MeshFixture;

TEST_F(MeshRolloutTest, OneAtATimeNeverHasTwoHostsOutOfService) {
  auto d = deploy("one", "OneAtATime");
  EXPECT_EQ(last_exit_, 0);
  EXPECT_EQ(d["status"], "Succeeded") << d.dump(2);
  EXPECT_EQ(d["overview"]["Succeeded"], kNodes);
  EXPECT_EQ(max_overlap(), 1);
}

TEST_F(MeshRolloutTest, HalfAtATimeKeepsHalfInServiceAndAllAtOnceUsesEveryHost) {
  auto half = deploy("half", "HalfAtATime");
  EXPECT_EQ(half["status"], "Succeeded") << half.dump(2);
  const int h = max_overlap();
  EXPECT_LE(h, kNodes / 2);
  EXPECT_GE(h, 2);  // it did run hosts in parallel
  auto all = deploy("all", "AllAtOnce");
  EXPECT_EQ(all["status"], "Succeeded") << all.dump(2);
  EXPECT_EQ(max_overlap(), kNodes);
}

TEST_F(MeshRolloutTest, CustomSeventyFivePercentHealthyKeepsAtMostTwoOut) {
  // 75% of 8 healthy: K = 8 - ceil(8 * 0.75) = 2.
  ASSERT_EQ(cli(0, {"config", "create", "Most", "--min-healthy", "75%"}).exit_code, 0);
  auto d = deploy("most", "Most");
  EXPECT_EQ(d["status"], "Succeeded") << d.dump(2);
  const int h = max_overlap();
  EXPECT_LE(h, 2);
  EXPECT_GE(h, 1);
}

TEST_F(MeshRolloutTest, AFailingHostFailsOneAtATimeAndLaterHostsAreSkipped) {
  // host-3's and host-4's ValidateService fail: the first of them in rollout order keeps its
  // token and nobody after it enters. (Two, because OneAtATime succeeds when only the last host
  // in order fails, and the order is a hash of the deployment id.)
  std::ofstream(dir_ / "fail_hosts") << (dir_ / "host-3" / "root").string() << "\n"
                                     << (dir_ / "host-4" / "root").string() << "\n";
  auto d = deploy("fails", "OneAtATime");
  EXPECT_EQ(last_exit_, 1);
  EXPECT_EQ(d["status"], "Failed") << d.dump(2);
  EXPECT_EQ(d["errorInformation"]["code"], "HEALTH_CONSTRAINTS");
  int failed = 0, skipped = 0;
  for (const auto& h : d["hosts"]) {
    failed += h["status"] == "Failed";
    skipped += h["status"] == "Skipped";
    if (h["status"] == "Failed") {
      EXPECT_TRUE(h["host"] == "host-3" || h["host"] == "host-4") << h.dump(2);
      bool diag = false;
      for (const auto& e : h["events"]) {
        if (e["name"] == "ValidateService") {
          EXPECT_EQ(e["status"], "Failed");
          diag = e["diagnostics"]["logTail"].get<std::string>().find("failing on purpose") !=
                 std::string::npos;
        }
      }
      EXPECT_TRUE(diag) << h.dump(2);
    }
  }
  EXPECT_EQ(failed, 1) << d.dump(2);
  EXPECT_GE(skipped, 1);  // the other failing host, ordered after the first, never entered
  EXPECT_LE(max_overlap(), 1);
}

TEST_F(MeshRolloutTest, AFailingHostUnderHalfAtATimeFailsAloneAndTheDeploymentSucceeds) {
  // HalfAtATime on 8 hosts needs 4 successes (APPSPEC.md); one failed host leaves 7. It keeps
  // its token, so at most 4 hosts are out of service, the failed one included, to the end.
  std::ofstream(dir_ / "fail_hosts") << root(2).string() << "\n";
  auto d = deploy("halffail", "HalfAtATime");
  EXPECT_EQ(last_exit_, 0);
  EXPECT_EQ(d["status"], "Succeeded") << d.dump(2);
  EXPECT_EQ(d["overview"]["Succeeded"], kNodes - 1) << d.dump(2);
  EXPECT_EQ(d["overview"]["Failed"], 1) << d.dump(2);
  for (const auto& h : d["hosts"]) {
    EXPECT_EQ(h["status"], h["host"] == "host-3" ? "Failed" : "Succeeded") << h.dump(2);
  }
  EXPECT_LE(max_overlap(), kNodes / 2);
}

TEST_F(MeshRolloutTest, StopThroughAnotherNodeStartsNoFurtherScriptAnywhere) {
  // The first host holds its window 3 s in BeforeInstall; the stop goes through node 6.
  std::ofstream(dir_ / "slow_seconds") << "3\n";
  fs::remove(dir_ / "stamps");
  auto [id, first] = deploy_and_hold_first("stop", "OneAtATime");
  ASSERT_FALSE(id.empty());
  ASSERT_GE(first, 0) << "no host entered its window within 15 s";
  auto stop = cli(5, {"stop", id});
  ASSERT_EQ(stop.exit_code, 0) << stop.out << stop.err;
  auto d = status_until(2, id, settled, 60s);
  EXPECT_EQ(d["status"], "Stopped") << d.dump(2);
  // Only the host inside its window when the stop came ever ran a script: its BeforeInstall
  // finished, its ValidateService (the "leave" stamp) never started, nobody else entered.
  EXPECT_EQ(entered(), std::vector<int>{first});
  std::ifstream stamps(dir_ / "stamps");
  const std::string all((std::istreambuf_iterator<char>(stamps)), {});
  EXPECT_EQ(all.find("leave"), std::string::npos) << all;
  for (const auto& h : d["hosts"]) {
    if (h["host"] == "host-" + std::to_string(first + 1)) {
      EXPECT_NE(h["status"], "Succeeded") << h.dump(2);
    } else {
      EXPECT_EQ(h["status"], "Skipped") << h.dump(2);
    }
  }
  // Every node tells the same story.
  auto other = status_until(7, id, settled, 10s);
  EXPECT_EQ(other["status"], "Stopped");
  EXPECT_EQ(other["hosts"], d["hosts"]);
}

TEST_F(MeshRolloutTest, RollbackRedeploysTheLastSuccessfulRevision) {
  auto good = deploy("rb", "AllAtOnce");
  ASSERT_EQ(good["status"], "Succeeded") << good.dump(2);
  // A second revision that fails everywhere.
  std::ofstream(dir_ / "rev" / "content" / "hello.txt") << "v2\n";
  {
    std::ofstream fail(dir_ / "fail_hosts");
    for (int i = 1; i <= kNodes; ++i)
      fail << (dir_ / ("host-" + std::to_string(i)) / "root").string() << "\n";
  }
  auto bad = cli(0, {"deploy", "--app", "web", "--group", "rb", "--source", (dir_ / "rev").string(),
                     "--wait"});
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  fs::remove(dir_ / "fail_hosts");
  auto rb = cli(2, {"rollback", "--app", "web", "--group", "rb", "--wait", "-o", "json"});
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  auto doc = json::parse(rb.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << rb.out;
  EXPECT_EQ(doc["status"], "Succeeded");
  EXPECT_EQ(doc["revision"], good["revision"]);
  EXPECT_EQ(read_file(dir_ / "host-6" / "root" / "srv" / "app" / "hello.txt"), "hello\n");
}

TEST_F(MeshRolloutTest, ConcurrentSubmissionsThroughTwoNodesNeverOverlap) {
  ASSERT_EQ(cli(0, {"group", "create", "--app", "web", "--name", "race", "--tag", "role=web",
                    "--config", "OneAtATime"})
                .exit_code,
            0);
  auto pushed = cli(0, {"push", "--app", "web", "--source", (dir_ / "rev").string()});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
  const std::string rev = pushed.out.substr(0, pushed.out.find('\n'));
  std::this_thread::sleep_for(300ms);  // the revision record reaches node 4
  command_result a, b;
  std::thread ta([&] {
    a = cli(0, {"deploy", "--app", "web", "--group", "race", "--revision", rev, "--wait"});
  });
  std::thread tb([&] {
    b = cli(3, {"deploy", "--app", "web", "--group", "race", "--revision", rev, "--wait"});
  });
  ta.join();
  tb.join();
  const std::string id_a = a.out.substr(0, a.out.find('\n'));
  const std::string id_b = b.out.substr(0, b.out.find('\n'));
  ASSERT_FALSE(id_a.empty()) << a.err;
  ASSERT_FALSE(id_b.empty()) << b.err;
  // The two never ran at the same time: at most one host was inside the window, ever.
  EXPECT_LE(max_overlap(), 1);
  // Either one lost the admission (Failed, naming the winner) or they ran one after the other.
  auto da = json::parse(cli(2, {"status", id_a, "-o", "json"}).out);
  auto db = json::parse(cli(2, {"status", id_b, "-o", "json"}).out);
  const bool a_lost = da["status"] == "Failed";
  const bool b_lost = db["status"] == "Failed";
  EXPECT_FALSE(a_lost && b_lost) << da.dump(2) << db.dump(2);
  auto message = [](const json& d) {
    return d["errorInformation"].is_object() ? d["errorInformation"].value("message", "")
                                             : std::string();
  };
  const std::string msg_a = message(da);
  const std::string msg_b = message(db);
  EXPECT_TRUE(!a_lost || msg_a.find(id_b) != std::string::npos) << msg_a;
  EXPECT_TRUE(!b_lost || msg_b.find(id_a) != std::string::npos) << msg_b;
  EXPECT_TRUE(a_lost || da["status"] == "Succeeded") << da.dump(2);
  EXPECT_TRUE(b_lost || db["status"] == "Succeeded") << db.dump(2);
  RecordProperty("outcome", a_lost || b_lost ? "one lost admission" : "ran one after the other");
  std::printf("concurrent submissions: %s\n",
              a_lost || b_lost ? "one lost admission" : "ran one after the other");
}

}  // namespace
}  // namespace meshdeploy::test

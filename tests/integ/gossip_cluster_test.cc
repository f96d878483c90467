// Real `meshdeploy node run` processes forming an encrypted gossip cluster on
// loopback (7 nodes): join, crash detection, graceful leave, and a node with the wrong
// key kept out.
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <thread>

namespace meshdeploy::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

class GossipClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = run_command({meshdeploy_binary(), "keygen"});
    ASSERT_EQ(key.exit_code, 0);
    write_file(dir_ / "keyring", key.out, 0600);
    auto other = run_command({meshdeploy_binary(), "keygen"});
    write_file(dir_ / "other-keyring", other.out, 0600);
  }

  std::unique_ptr<node_process> start(const std::string& name, const std::string& keyring,
                                      const std::string& join) {
    std::vector<std::string> args = {"--keyring",   (dir_ / keyring).string(), "--bind",
                                     "127.0.0.1:0", "--gossip-profile",        "local"};
    if (!join.empty()) {
      args.push_back("--join");
      args.push_back(join);
    }
    auto n = std::make_unique<node_process>(name, dir_ / name / "data", dir_ / name / "root",
                                            std::vector<std::string>{"role=web"}, args);
    EXPECT_FALSE(n->api().empty()) << read_file(n->log_path());
    return n;
  }

  static std::string gossip_addr(const node_process& n) {
    std::string s = read_file(n.data_dir() / "gossip.addr");
    return s.substr(0, s.find('\n'));
  }

  static json members(const node_process& n) {
    auto r = n.cli({"members", "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }

  static std::string status_of(const json& m, const std::string& name) {
    for (const auto& x : m.value("members", json::array())) {
      if (x.value("name", "") == name) return x.value("status", "");
    }
    return "absent";
  }

  // Polls (bounded) until `pred` holds on every node; returns the time it took.
  template <class Pred>
  std::chrono::milliseconds wait_all(const std::vector<node_process*>& nodes, Pred pred,
                                     std::chrono::milliseconds limit) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000; ++i) {
      bool all = true;
      for (auto* n : nodes) all = all && pred(members(*n));
      const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - t0);
      if (all) return took;
      if (took > limit) break;
      std::this_thread::sleep_for(100ms);
    }
    return std::chrono::milliseconds::max();
  }

  temp_dir dir_{"meshdeploy-gossip"};
};

TEST_F(GossipClusterTest, NodesJoinDetectCrashAndSeeLeave) {
  // Seven nodes (the size): n1 is the seed, the others join through it.
  constexpr int kCount = 7;
  std::vector<std::unique_ptr<node_process>> nodes;
  nodes.push_back(start("n1", "keyring", ""));
  const std::string seed = gossip_addr(*nodes[0]);
  ASSERT_FALSE(seed.empty());
  for (int i = 2; i <= kCount; ++i)
    nodes.push_back(start("n" + std::to_string(i), "keyring", seed));
  std::vector<node_process*> all;
  for (auto& n : nodes) all.push_back(n.get());

  auto all_alive = [](const json& m) {
    for (int i = 1; i <= kCount; ++i) {
      if (status_of(m, "n" + std::to_string(i)) != "alive") return false;
    }
    return true;
  };
  ASSERT_LT(wait_all(all, all_alive, 30s), 30s) << members(*nodes[0]).dump() << "\n"
                                                << members(*nodes[6]).dump() << "\nn7 log:\n"
                                                << read_file(nodes[6]->log_path());

  // The table view renders every member with its tags.
  auto table = nodes[1]->cli({"members"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("n7"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("role=web"), std::string::npos) << table.out;

  // kill -9: every survivor sees it dead (local profile: well under 10 s).
  nodes[6]->kill_hard();
  std::vector<node_process*> survivors(all.begin(), all.begin() + 6);
  const auto detect = wait_all(
      survivors, [](const json& m) { return status_of(m, "n7") == "dead"; }, 15s);
  ASSERT_LT(detect, 15s) << members(*nodes[0]).dump();
  std::printf("crash of n7 seen dead by all 6 survivors after %lld ms\n",
              static_cast<long long>(detect.count()));

  // SIGTERM: a graceful leave, seen as left (not dead).
  EXPECT_EQ(nodes[5]->stop(), 0);
  std::vector<node_process*> rest(all.begin(), all.begin() + 5);
  EXPECT_LT(wait_all(
                rest, [](const json& m) { return status_of(m, "n6") == "left"; }, 10s),
            10s)
      << members(*nodes[0]).dump();
}

TEST_F(GossipClusterTest, NodeWithTheWrongKeyCannotJoinAndIsCounted) {
  auto n1 = start("n1", "keyring", "");
  auto n2 = start("n2", "keyring", gossip_addr(*n1));
  auto evil = start("evil", "other-keyring", gossip_addr(*n1));
  std::vector<node_process*> good = {n1.get(), n2.get()};
  ASSERT_LT(wait_all(
                good,
                [](const json& m) {
                  return status_of(m, "n1") == "alive" && status_of(m, "n2") == "alive";
                },
                10s),
            10s);
  std::this_thread::sleep_for(1500ms);  // the intruder keeps trying to join
  const json m = members(*n1);
  EXPECT_EQ(status_of(m, "evil"), "absent") << m.dump();
  EXPECT_GT(m["dropped"]["auth"].get<int>(), 0) << m.dump();
  // The same count on /metrics, in Prometheus text.
  auto metrics = run_command({"/usr/bin/curl", "-s", "http://" + n1->api() + "/metrics"});
  EXPECT_NE(metrics.out.find("meshdeploy_gossip_dropped_total{reason=\"auth\"} "),
            std::string::npos)
      << metrics.out;
  EXPECT_NE(metrics.out.find("meshdeploy_gossip_members{state=\"alive\"} 2"), std::string::npos)
      << metrics.out;
  EXPECT_EQ(status_of(members(*evil), "n1"), "absent");
}

// Sum of meshdeploy_gossip_members_declared_dead_total on a node's /metrics.
long declared_dead(const node_process& n) {
  auto m = run_command({"/usr/bin/curl", "-s", "http://" + n.api() + "/metrics"});
  const std::string key = "\nmeshdeploy_gossip_members_declared_dead_total ";
  const auto pos = m.out.find(key);
  if (pos == std::string::npos) return -1;
  return std::stol(m.out.substr(pos + key.size()));
}

TEST_F(GossipClusterTest, StopShorterThanTheSuspicionFloorCausesNoDeath) {
  auto n1 = start("n1", "keyring", "");
  const std::string seed = gossip_addr(*n1);
  auto n2 = start("n2", "keyring", seed);
  auto n3 = start("n3", "keyring", seed);
  auto n4 = start("n4", "keyring", seed);
  std::vector<node_process*> all = {n1.get(), n2.get(), n3.get(), n4.get()};
  auto n4_alive = [](const json& m) { return status_of(m, "n4") == "alive"; };
  ASSERT_LT(wait_all(all, n4_alive, 10s), 10s);
  // `local` profile floor: 3 * max(1, log10 4) * 500 ms = 1.5 s after the suspicion is raised.
  ASSERT_EQ(::kill(n4->pid(), SIGSTOP), 0);
  std::this_thread::sleep_for(1000ms);
  ASSERT_EQ(::kill(n4->pid(), SIGCONT), 0);
  std::this_thread::sleep_for(3s);
  for (auto* n : {n1.get(), n2.get(), n3.get()}) {
    EXPECT_EQ(declared_dead(*n), 0) << n->api();
    EXPECT_EQ(status_of(members(*n), "n4"), "alive");
  }
}

TEST_F(GossipClusterTest, LeaveThenRejoinOnANewPortIsSeenAliveAtTheNewAddress) {
  auto n1 = start("n1", "keyring", "");
  const std::string seed = gossip_addr(*n1);
  auto n2 = start("n2", "keyring", seed);
  auto n3 = start("n3", "keyring", seed);
  std::vector<node_process*> all = {n1.get(), n2.get(), n3.get()};
  auto n3_alive = [](const json& m) { return status_of(m, "n3") == "alive"; };
  ASSERT_LT(wait_all(all, n3_alive, 10s), 10s);
  const std::string old_addr = gossip_addr(*n3);
  ASSERT_EQ(n3->stop(), 0);
  std::vector<node_process*> rest = {n1.get(), n2.get()};
  ASSERT_LT(wait_all(
                rest, [](const json& m) { return status_of(m, "n3") == "left"; }, 10s),
            10s);
  ASSERT_TRUE(n3->start()) << read_file(n3->log_path());  // --bind 127.0.0.1:0: a new port
  const std::string new_addr = gossip_addr(*n3);
  ASSERT_NE(new_addr, old_addr);
  ASSERT_LT(wait_all(all, n3_alive, 10s), 10s) << members(*n1).dump();
  for (auto* n : rest) {
    bool at_new = false;
    const json view = members(*n);  // the loop below must not outlive it
    for (const auto& x : view["members"]) {
      if (x.value("name", "") == "n3") at_new = x.value("address", "") == new_addr;
    }
    EXPECT_TRUE(at_new) << new_addr << " " << members(*n).dump();
  }
}

TEST_F(GossipClusterTest, JoinWithoutKeyringIsAUsageError) {
  auto r = run_command({meshdeploy_binary(), "node", "run", "--data-dir", (dir_ / "x").string(),
                        "--join", "127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--keyring"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace meshdeploy::test

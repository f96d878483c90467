// Signed records across real `meshdeploy node run` processes on loopback: a
// definition made through one node is visible through every other within 2 s;
// an operator without a grant is refused with exit 4; a revoked operator can no
// longer change anything; forged records are refused and counted; the audit
// chain verifies on every node.
#include "node/security/audit.h"
#include "storage/db.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

namespace meshdeploy::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

class RecordsClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(ensure_cluster_keys(keys(), &why)) << why;
  }

  fs::path keys() const { return dir_ / "cluster"; }
  fs::path tester() const { return keys() / "tester.key"; }

  std::unique_ptr<node_process> start(const std::string& name, const std::string& join) {
    std::vector<std::string> args = {"--keyring",        (keys() / "keyring.txt").string(),
                                     "--admin-pub",      (keys() / "admin.pub").string(),
                                     "--bind",           "127.0.0.1:0",
                                     "--gossip-profile", "local",
                                     "--grant",          (keys() / "tester.grant").string()};
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

  // Starts `n` nodes, the first one seeding the others, and waits (up to 30 s: a member that
  // missed every gossip about a later joiner learns of it at the latest at the next
  // anti-entropy exchange, 5 to 15 s after start in the local profile) until all see all alive.
  void start_cluster(int n) {
    nodes_.push_back(start("node-1", ""));
    const std::string seed = gossip_addr(*nodes_[0]);
    for (int i = 2; i <= n; ++i) nodes_.push_back(start("node-" + std::to_string(i), seed));
    const auto t0 = std::chrono::steady_clock::now();
    for (auto& node : nodes_) {
      bool all = false;
      std::string last;
      for (int i = 0; i < 1000 && !all; ++i) {
        auto r = node->cli_as(tester(), {"members", "-o", "json"});
        auto j = json::parse(r.out, nullptr, false);
        int alive = 0;
        if (j.is_object()) {
          for (const auto& m : j.value("members", json::array())) alive += m["status"] == "alive";
        }
        all = alive == n;
        last = r.out;
        if (all || std::chrono::steady_clock::now() - t0 > 30s) break;
        std::this_thread::sleep_for(50ms);
      }
      ASSERT_TRUE(all) << "node did not see the cluster within 30 s; its last view: " << last
                       << "\nits log:\n"
                       << read_file(node->log_path());
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    std::printf("all %d nodes saw all alive after %lld ms\n", n,
                static_cast<long long>(took.count()));
  }

  // Polls `n` (bounded by `limit`) until `app list` there shows `app`; the time it took.
  std::chrono::milliseconds wait_for_app(const node_process& n, const std::string& app,
                                         std::chrono::milliseconds limit) const {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 10000; ++i) {
      auto r = n.cli_as(tester(), {"app", "list", "-o", "json"});
      const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - t0);
      if (r.exit_code == 0 && r.out.find("\"" + app + "\"") != std::string::npos) return took;
      if (took > limit) break;
      std::this_thread::sleep_for(20ms);
    }
    return std::chrono::milliseconds::max();
  }

  temp_dir dir_{"meshdeploy-records"};
  std::vector<std::unique_ptr<node_process>> nodes_;
};

TEST_F(RecordsClusterTest, DefinitionThroughOneNodeIsVisibleThroughAllWithinTwoSeconds) {
  start_cluster(7);
  ASSERT_EQ(nodes_[0]->cli_as(tester(), {"app", "create", "web"}).exit_code, 0);
  std::chrono::milliseconds worst{0};
  for (auto& n : nodes_) {
    const auto took = wait_for_app(*n, "web", 5s);
    worst = std::max(worst, took);
  }
  RecordProperty("slowest_ms", static_cast<int>(worst.count()));
  std::printf("definition visible on all 7 nodes after %lld ms\n",
              static_cast<long long>(worst.count()));
  EXPECT_LE(worst, 2000ms) << "slowest node saw the application after " << worst.count() << " ms";
  // A group made through node 4 reaches node 7; its id is the same everywhere.
  ASSERT_EQ(nodes_[3]
                ->cli_as(tester(),
                         {"group", "create", "--app", "web", "--name", "prod", "--tag", "role=web"})
                .exit_code,
            0);
  std::string id_on_7;
  for (int i = 0; i < 100 && id_on_7.empty(); ++i) {
    auto r = nodes_[6]->cli_as(tester(), {"group", "list", "--app", "web", "-o", "json"});
    auto j = json::parse(r.out, nullptr, false);
    if (j.is_object() && !j["deploymentGroups"].empty()) {
      id_on_7 = j["deploymentGroups"][0]["id"];
    }
    if (id_on_7.empty()) std::this_thread::sleep_for(50ms);
  }
  auto on_4 =
      json::parse(nodes_[3]->cli_as(tester(), {"group", "list", "--app", "web", "-o", "json"}).out);
  EXPECT_EQ(id_on_7, on_4["deploymentGroups"][0]["id"]);
  // Every node's audit chain has the accepted records and verifies.
  for (auto& n : nodes_) {
    auto v = n->cli_as(tester(), {"audit", "verify"});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  }
  auto audit =
      json::parse(nodes_[6]->cli_as(tester(), {"audit", "-o", "json"}).out, nullptr, false);
  ASSERT_TRUE(audit.is_object()) << audit;
  EXPECT_GE(audit.value("entries", json::array()).size(), 3u) << audit;  // grant, app, group
}

TEST_F(RecordsClusterTest, OperatorsWithoutOrOutsideTheirGrantAreRefused) {
  start_cluster(2);
  auto& a = *nodes_[0];
  auto& b = *nodes_[1];
  // No identity at all: a usage error that says how to sign.
  auto none = a.cli_as("", {"app", "create", "web"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("--identity"), std::string::npos) << none.err;
  // A key the admin never granted: permission denied.
  const fs::path bob = dir_ / "bob.key";
  ASSERT_EQ(run_command(
                {meshdeploy_binary(), "operator", "create", "--name", "bob", "--out", bob.string()})
                .exit_code,
            0);
  auto denied = a.cli_as(bob, {"app", "create", "web"});
  EXPECT_EQ(denied.exit_code, 4) << denied.err;
  // The admin grants bob deploy rights on app/web only: defining is still refused, and the
  // message names the missing permission.
  auto grant =
      a.cli_as(tester(), {"grant", "--admin-key", (keys() / "admin.key").string(), "--operator",
                          bob.string() + ".pub", "--allow", "deploy:app/web/*"});
  ASSERT_EQ(grant.exit_code, 0) << grant.err;
  std::this_thread::sleep_for(500ms);  // let the grant reach node b
  auto define = b.cli_as(bob, {"app", "create", "api"});
  EXPECT_EQ(define.exit_code, 4);
  EXPECT_NE(define.err.find("define:app/api"), std::string::npos) << define.err;
  // Full rights, then revoked: refused again everywhere.
  ASSERT_EQ(a.cli_as(tester(), {"grant", "--admin-key", (keys() / "admin.key").string(),
                                "--operator", bob.string() + ".pub", "--allow", "*:*"})
                .exit_code,
            0);
  bool allowed = false;
  for (int i = 0; i < 100 && !allowed; ++i) {
    allowed = b.cli_as(bob, {"app", "create", "api"}).exit_code == 0;
    if (!allowed) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(allowed);
  ASSERT_EQ(a.cli_as(tester(), {"grant", "--admin-key", (keys() / "admin.key").string(),
                                "--operator", bob.string() + ".pub", "--revoke"})
                .exit_code,
            0);
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    refused = b.cli_as(bob, {"app", "create", "api2"}).exit_code == 4;
    if (!refused) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(refused);
  // Only the admin key signs grants: an operator signing one is refused.
  auto self_grant = a.cli_as(tester(), {"grant", "--admin-key", tester().string(), "--operator",
                                        bob.string() + ".pub", "--allow", "*:*"});
  EXPECT_EQ(self_grant.exit_code, 4) << self_grant.err;
}

TEST_F(RecordsClusterTest, AManuallyCorruptedAuditEntryIsDetected) {
  nodes_.push_back(start("node-1", ""));
  auto& n = *nodes_[0];
  ASSERT_EQ(n.cli_as(tester(), {"app", "create", "web"}).exit_code, 0);
  ASSERT_EQ(n.cli_as(tester(), {"app", "create", "api"}).exit_code, 0);
  ASSERT_EQ(n.cli_as(tester(), {"audit", "verify"}).exit_code, 0);
  ASSERT_EQ(n.stop(), 0);
  {
    // Edit the second entry's bytes in place, as someone with disk access might.
    auto db = storage::db::open({n.data_dir() / "db", {security::audit_log::column_family}});
    ASSERT_TRUE(db) << db.error().message;
    std::vector<std::pair<std::string, std::string>> entries;
    ASSERT_TRUE(db.value()->scan(security::audit_log::column_family, "",
                                 [&](std::string_view k, std::string_view v) {
                                   entries.emplace_back(k, v);
                                   return true;
                                 }));
    ASSERT_GE(entries.size(), 3u);
    std::string value = entries[1].second;
    value[value.size() / 2] = static_cast<char>(value[value.size() / 2] ^ 0x01);
    ASSERT_TRUE(db.value()->put(security::audit_log::column_family, entries[1].first, value,
                                storage::durability::synced));
  }
  ASSERT_TRUE(n.start()) << read_file(n.log_path());
  auto v = n.cli_as(tester(), {"audit", "verify"});
  EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
  EXPECT_NE((v.out + v.err).find("2"), std::string::npos) << v.out << v.err;  // names entry 2
}

}  // namespace
}  // namespace meshdeploy::test

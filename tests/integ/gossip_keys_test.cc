// Cluster-wide key rotation on real `meshdeploy node run` processes over
// loopback: `meshdeploy keys install|use|remove|list` through one node's API,
// the keyring persisted in <data-dir>/keyring.json, a node holding only a
// removed key kept out, and a node that was offline during a rotation
// rejoining with the key it still shares.
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <sys/stat.h>
#include <thread>

namespace meshdeploy::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

class GossipKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = run_command({meshdeploy_binary(), "keygen"});
    ASSERT_EQ(key.exit_code, 0);
    old_key_ = key.out.substr(0, key.out.find('\n'));
    write_file(dir_ / "keyring", key.out, 0600);
    auto other = run_command({meshdeploy_binary(), "keygen"});
    new_key_ = other.out.substr(0, other.out.find('\n'));
  }

  std::unique_ptr<node_process> start(const std::string& name, const std::string& join) {
    std::vector<std::string> args = {"--keyring",   (dir_ / "keyring").string(), "--bind",
                                     "127.0.0.1:0", "--gossip-profile",          "local"};
    if (!join.empty()) {
      args.push_back("--join");
      args.push_back(join);
    }
    auto n = std::make_unique<node_process>(name, dir_ / name / "data", dir_ / name / "root",
                                            std::vector<std::string>{}, args);
    EXPECT_FALSE(n->api().empty()) << read_file(n->log_path());
    return n;
  }

  static std::string gossip_addr(const node_process& n) {
    std::string s = read_file(n.data_dir() / "gossip.addr");
    return s.substr(0, s.find('\n'));
  }

  static std::string status_of(const node_process& viewer, const std::string& name) {
    auto r = viewer.cli({"members", "--output", "json"});
    const json m = json::parse(r.out, nullptr, false);
    if (!m.is_object()) return "error";
    for (const auto& x : m.value("members", json::array())) {
      if (x.value("name", "") == name) return x.value("status", "");
    }
    return "absent";
  }

  // Polls (bounded) until every viewer sees every name alive.
  static bool all_alive(const std::vector<node_process*>& viewers,
                        const std::vector<std::string>& names, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (int i = 0; i < 1000; ++i) {
      bool all = true;
      for (auto* v : viewers) {
        for (const auto& n : names) all = all && status_of(*v, n) == "alive";
      }
      if (all) return true;
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  static json keys(const node_process& n, const std::vector<std::string>& args, int want_exit) {
    std::vector<std::string> full = {"keys"};
    full.insert(full.end(), args.begin(), args.end());
    full.push_back("--output");
    full.push_back("json");
    if (args[0] != "list") {
      full.push_back("--admin-key");
      full.push_back((n.cluster_dir() / "admin.key").string());
    }
    auto r = n.cli(full);
    EXPECT_EQ(r.exit_code, want_exit) << args[0] << ": " << r.out << r.err;
    return json::parse(r.out, nullptr, false);
  }

  temp_dir dir_{"meshdeploy-keys"};
  std::string old_key_, new_key_;
};

TEST_F(GossipKeysTest, RotationReachesAllFiveNodesAndTheOldKeyIsLockedOut) {
  auto n1 = start("n1", "");
  const std::string seed = gossip_addr(*n1);
  std::vector<std::unique_ptr<node_process>> nodes;
  nodes.push_back(std::move(n1));
  for (int i = 2; i <= 5; ++i) nodes.push_back(start("n" + std::to_string(i), seed));
  std::vector<node_process*> all;
  for (auto& n : nodes) all.push_back(n.get());
  const std::vector<std::string> names = {"n1", "n2", "n3", "n4", "n5"};
  ASSERT_TRUE(all_alive(all, names, 15s)) << read_file(all[4]->log_path());

  // Each step through a different node; every member acknowledges.
  json r = keys(*all[1], {"install", new_key_}, 0);
  EXPECT_EQ(r.value("acknowledged", 0), 5) << r.dump();
  EXPECT_TRUE(r.value("ok", false)) << r.dump();
  r = keys(*all[2], {"use", new_key_}, 0);
  EXPECT_EQ(r.value("acknowledged", 0), 5) << r.dump();
  // The primary cannot be removed; nothing changes.
  keys(*all[0], {"remove", new_key_}, 2);
  r = keys(*all[3], {"remove", old_key_}, 0);
  EXPECT_EQ(r.value("acknowledged", 0), 5) << r.dump();

  r = keys(*all[4], {"list"}, 0);
  ASSERT_EQ(r["keys"].size(), 1u) << r.dump();
  EXPECT_EQ(r["keys"][0].value("members", 0), 5) << r.dump();
  EXPECT_EQ(r["keys"][0].value("primary_on", 0), 5) << r.dump();
  EXPECT_EQ(r.value("acknowledged", 0), 5);

  // Persisted on every node, 0600, holding the new key and not the old one.
  for (auto* n : all) {
    const fs::path f = n->data_dir() / "keyring.json";
    struct stat st {};
    ASSERT_EQ(::stat(f.c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
    const std::string text = read_file(f);
    EXPECT_NE(text.find(new_key_), std::string::npos) << f;
    EXPECT_EQ(text.find(old_key_), std::string::npos) << f;
  }

  // Everybody still talks: no member was lost during the rotation.
  std::this_thread::sleep_for(1s);
  ASSERT_TRUE(all_alive(all, names, 5s));

  // A node started with only the old key cannot get in.
  auto stale = start("stale", seed);
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(status_of(*all[0], "stale"), "absent");
  EXPECT_EQ(status_of(*stale, "n1"), "absent");

  // A member restarted with its original --keyring (old key only) keeps the rotated keyring:
  // the persisted file wins and the removed key is not brought back.
  ASSERT_EQ(all[4]->stop(), 0);
  ASSERT_TRUE(all[4]->start()) << read_file(all[4]->log_path());
  ASSERT_TRUE(all_alive({all[0], all[4]}, names, 15s)) << read_file(all[4]->log_path());
  EXPECT_EQ(read_file(all[4]->data_dir() / "keyring.json").find(old_key_), std::string::npos);
}

TEST_F(GossipKeysTest, NodeOfflineDuringRotationRejoinsWithTheOldKeyStillInstalled) {
  auto n1 = start("n1", "");
  const std::string seed = gossip_addr(*n1);
  auto n2 = start("n2", seed);
  auto n3 = start("n3", seed);
  const std::vector<std::string> names = {"n1", "n2", "n3"};
  ASSERT_TRUE(all_alive({n1.get(), n2.get(), n3.get()}, names, 15s));

  ASSERT_EQ(n3->stop(), 0);
  json r = keys(*n1, {"install", new_key_}, 0);
  EXPECT_EQ(r.value("acknowledged", 0), 2) << r.dump();
  r = keys(*n2, {"use", new_key_}, 0);
  EXPECT_EQ(r.value("acknowledged", 0), 2) << r.dump();

  // n3 comes back knowing only the old key: the others still hold it, answer it with it and
  // send it the current keyring.
  ASSERT_TRUE(n3->start()) << read_file(n3->log_path());
  ASSERT_TRUE(all_alive({n1.get(), n2.get(), n3.get()}, names, 15s)) << read_file(n3->log_path());
  r = keys(*n3, {"list"}, 0);
  EXPECT_EQ(r.value("acknowledged", 0), 3) << r.dump();
  bool new_is_primary_everywhere = false;
  for (const auto& k : r["keys"]) {
    if (k.value("primary_on", 0) == 3 && k.value("local_primary", false)) {
      new_is_primary_everywhere = true;
    }
  }
  EXPECT_TRUE(new_is_primary_everywhere) << r.dump();
  EXPECT_NE(read_file(n3->data_dir() / "keyring.json").find(new_key_), std::string::npos);
  EXPECT_NE(read_file(n3->log_path()).find("keyring synced from"), std::string::npos)
      << read_file(n3->log_path());

  // Now the old key can go, and n3 stays in.
  r = keys(*n1, {"remove", old_key_}, 0);
  EXPECT_EQ(r.value("acknowledged", 0), 3) << r.dump();
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(all_alive({n1.get(), n3.get()}, names, 5s));
}

TEST_F(GossipKeysTest, KeyOperationsNeedTheAdminSignature) {
  auto n1 = start("n1", "");
  const std::string key = run_command({meshdeploy_binary(), "keygen"}).out;
  const std::string k = key.substr(0, key.find('\n'));
  // Signed by an operator key, not the admin's: refused with exit 4.
  auto r =
      n1->cli({"keys", "install", k, "--admin-key", (n1->cluster_dir() / "tester.key").string()});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("admin"), std::string::npos) << r.err;
  // No signature at all (a raw API call): refused.
  auto raw =
      run_command({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                   "-d", "{\"key\": \"" + k + "\"}", "http://" + n1->api() + "/v1/keys/install"});
  EXPECT_EQ(raw.out, "403");
  // The keyring did not change.
  auto list = keys(*n1, {"list"}, 0);
  EXPECT_EQ(list["keys"].size(), 1u) << list.dump();
}

}  // namespace
}  // namespace meshdeploy::test

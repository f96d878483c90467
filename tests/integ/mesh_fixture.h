// A real mesh of `meshdeploy node run` processes on loopback for the deployment tests, each
// with its own data dir and install root. The hooks append enter/leave stamps (CLOCK_MONOTONIC,
// through /proc/uptime's clock) to one shared file, and the tests compute the true overlap from
// it instead of trusting the nodes' reports.
#pragma once

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace meshdeploy::test {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

inline constexpr int kNodes = 8;

class MeshFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(ensure_cluster_keys(keys(), &why)) << why;
    for (int i = 1; i <= node_count(); ++i) {
      const std::string name = "host-" + std::to_string(i);
      std::vector<std::string> args = {"--keyring",        (keys() / "keyring.txt").string(),
                                       "--admin-pub",      (keys() / "admin.pub").string(),
                                       "--grant",          (keys() / "tester.grant").string(),
                                       "--bind",           "127.0.0.1:0",
                                       "--gossip-profile", "local"};
      if (i > 1) {
        std::string seed = read_file(nodes_[0]->data_dir() / "gossip.addr");
        args.push_back("--join");
        args.push_back(seed.substr(0, seed.find('\n')));
      }
      nodes_.push_back(std::make_unique<node_process>(name, dir_ / name / "data",
                                                      dir_ / name / "root",
                                                      std::vector<std::string>{"role=web"}, args));
      ASSERT_FALSE(nodes_.back()->api().empty()) << read_file(nodes_.back()->log_path());
    }
    // Node 1 (which plans the deployments) sees everyone. Bounded by 30 s: a member that
    // missed every gossip about a later joiner learns of it at the latest at the next
    // anti-entropy exchange (5 to 15 s after start in the local profile).
    const auto t0 = std::chrono::steady_clock::now();
    std::string view;
    for (int tries = 0; tries < 1000; ++tries) {
      view = cli(0, {"members", "-o", "json"}).out;
      auto m = json::parse(view, nullptr, false);
      int alive = 0;
      if (m.is_object()) {
        for (const auto& x : m["members"]) alive += x["status"] == "alive";
      }
      if (alive == node_count()) break;
      ASSERT_LT(std::chrono::steady_clock::now() - t0, 30s)
          << "node-1 does not see all alive: " << view;
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(cli(0, {"app", "create", "web"}).exit_code, 0);
    make_revision();
  }

  // How many nodes SetUp starts (host-1 .. host-N); a test fixture may want fewer.
  virtual int node_count() const { return kNodes; }

  fs::path keys() const { return dir_ / "cluster"; }
  command_result cli(int node, std::vector<std::string> args) {
    return nodes_[node]->cli_as(keys() / "tester.key", std::move(args), 120s);
  }

  // A revision whose BeforeInstall stamps "enter" (and then sleeps 30 s, or the seconds in the
  // file slow_seconds, on hosts listed in slow_hosts), whose ValidateService stamps "leave"
  // after holding the window a moment, and which fails on hosts listed in fail_hosts.
  void make_revision() {
    const fs::path rev = dir_ / "rev";
    fs::create_directories(rev / "scripts");
    fs::create_directories(rev / "content");
    std::ofstream(rev / "content" / "hello.txt") << "hello\n";
    std::ofstream(rev / "appspec.yml")
        << "version: 0.0\nos: linux\nfiles:\n"
           "  - source: content\n    destination: /srv/app\nfile_exists_behavior: OVERWRITE\n"
           "hooks:\n"
           "  BeforeInstall:\n    - location: scripts/enter.sh\n"
           "  ValidateService:\n    - location: scripts/leave.sh\n";
    const std::string stamp = (dir_ / "stamps").string();
    const std::string fail = (dir_ / "fail_hosts").string();
    const std::string slow = (dir_ / "slow_hosts").string();
    std::ofstream(rev / "scripts" / "enter.sh")
        << "#!/bin/sh\nread t _ < /proc/uptime\necho \"enter $MESHDEPLOY_INSTALL_ROOT $t\" >> "
        << stamp << "\nif grep -qx \"$MESHDEPLOY_INSTALL_ROOT\" " << slow
        << " 2>/dev/null; then sleep \"$(cat " << (dir_ / "slow_seconds").string()
        << " 2>/dev/null || echo 30)\"; fi\n";
    std::ofstream(rev / "scripts" / "leave.sh")
        << "#!/bin/sh\nsleep 0.3\nif grep -qx \"$MESHDEPLOY_INSTALL_ROOT\" " << fail
        << " 2>/dev/null; then echo failing on purpose; exit 3; fi\n"
        << "read t _ < /proc/uptime\necho \"leave $MESHDEPLOY_INSTALL_ROOT $t\" >> " << stamp
        << "\n";
    fs::permissions(rev / "scripts" / "enter.sh", fs::perms::owner_all, fs::perm_options::add);
    fs::permissions(rev / "scripts" / "leave.sh", fs::perms::owner_all, fs::perm_options::add);
  }

  // The largest number of hosts inside [enter, leave] at once, from the stamps file. A host
  // that entered and never left (it failed) stays inside until the end. Stamps of the install
  // root `ignore` are left out (a host an operator excluded).
  int max_overlap(const std::string& ignore = "") {
    std::ifstream in(dir_ / "stamps");
    std::vector<std::pair<double, int>> edges;
    std::string what, host;
    double t = 0;
    while (in >> what >> host >> t) {
      if (host != ignore) edges.emplace_back(t, what == "enter" ? 1 : -1);
    }
    // Leaves before enters at the same tick (10 ms clock): count conservatively the other way.
    std::sort(edges.begin(), edges.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second > b.second;
    });
    int now = 0, worst = 0;
    for (const auto& [time, d] : edges) worst = std::max(worst, now += d);
    return worst;
  }

  // The install root of the host `i` (0-based).
  fs::path root(int i) const { return dir_ / ("host-" + std::to_string(i + 1)) / "root"; }

  // The hosts (0-based) with an "enter" stamp, in stamp order.
  std::vector<int> entered() {
    std::ifstream in(dir_ / "stamps");
    std::vector<int> out;
    std::string what, host;
    double t = 0;
    while (in >> what >> host >> t) {
      for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
        if (what == "enter" && host == root(i).string()) out.push_back(i);
      }
    }
    return out;
  }

  // The status document of `id` through node `via`, once `done(doc)` holds (polls every 100 ms
  // for at most `limit`); the last document read otherwise.
  json status_until(int via, const std::string& id, const std::function<bool(const json&)>& done,
                    std::chrono::milliseconds limit = 60s) {
    json doc;
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      doc = json::parse(cli(via, {"status", id, "-o", "json"}).out, nullptr, false);
      if (doc.is_object() && done(doc)) break;
      std::this_thread::sleep_for(100ms);
    }
    return doc;
  }

  // Creates `group` with `config`, makes every host's BeforeInstall sleep 30 s, deploys the
  // revision through node 1 without waiting, and waits (at most 15 s) for the first host to
  // enter its window; hooks are fast again afterwards. Returns the deployment id and that host
  // (-1 when none entered).
  std::pair<std::string, int> deploy_and_hold_first(const std::string& group,
                                                    const std::string& config) {
    EXPECT_EQ(cli(0, {"group", "create", "--app", "web", "--name", group, "--tag", "role=web",
                      "--config", config})
                  .exit_code,
              0);
    {
      std::ofstream slow(dir_ / "slow_hosts");
      for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) slow << root(i).string() << "\n";
    }
    auto r =
        cli(0, {"deploy", "--app", "web", "--group", group, "--source", (dir_ / "rev").string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string id = r.out.substr(0, r.out.find('\n'));
    int first = -1;
    for (int i = 0; i < 300 && first < 0 && !id.empty(); ++i) {
      if (auto e = entered(); !e.empty()) first = e.front();
      std::this_thread::sleep_for(50ms);
    }
    fs::remove(dir_ / "slow_hosts");
    return {id, first};
  }

  static bool ended(const json& d) {
    return d["status"] == "Succeeded" || d["status"] == "Failed" || d["status"] == "Stopped";
  }

  // Ended, and every host row final (a deployment can end before the last rows arrive).
  static bool settled(const json& d) {
    if (!ended(d)) return false;
    for (const auto& h : d["hosts"]) {
      if (h["status"] == "Pending" || h["status"] == "InProgress") return false;
    }
    return true;
  }

  // Deploys through node 1 with --wait; returns the final document read through node 6.
  json deploy(const std::string& group, const std::string& config) {
    EXPECT_EQ(cli(0, {"group", "create", "--app", "web", "--name", group, "--tag", "role=web",
                      "--config", config})
                  .exit_code,
              0);
    return deploy_existing(group);
  }

  // The same for a group that exists.
  json deploy_existing(const std::string& group) {
    fs::remove(dir_ / "stamps");
    auto r = cli(0, {"deploy", "--app", "web", "--group", group, "--source",
                     (dir_ / "rev").string(), "--wait"});
    const std::string id = r.out.substr(0, r.out.find('\n'));
    EXPECT_FALSE(id.empty()) << r.err;
    json doc;
    for (int i = 0; i < 100; ++i) {  // the watcher node may lag a few records behind
      doc = json::parse(cli(5, {"status", id, "-o", "json"}).out, nullptr, false);
      if (doc.is_object() && doc["status"] != "InProgress" && doc["status"] != "Created") break;
      std::this_thread::sleep_for(50ms);
    }
    last_exit_ = r.exit_code;
    return doc;
  }

  temp_dir dir_{"meshdeploy-mesh"};
  std::vector<std::unique_ptr<node_process>> nodes_;
  int last_exit_ = -1;
};

}  // namespace meshdeploy::test

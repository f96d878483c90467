// Bundles through the swarm between real node processes on loopback (docs/swarm.md): a 64 MiB
// bundle reaches every host byte for byte while the origin uploads less than two copies; a
// downloader killed mid-way resumes from the pieces it verified; and a process that is not in
// the cluster (another keyring) gets nothing, while one with the keyring gets the manifest and
// verified pieces over the same wire.
#include "gossip/keyring.h"
#include "node/mesh/gossip_driver.h"
#include "node/swarm/manifest.h"
#include "node/swarm/wire.h"
#include "tests/integ/mesh_fixture.h"

#include <boost/asio/io_context.hpp>

#include <cstdlib>
#include <random>

namespace meshdeploy::test {
namespace {

constexpr std::uint64_t kBlobBytes = 64u << 20;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A Prometheus sample of the node at `api` (name with its labels, e.g.
// meshdeploy_gossip_dropped_total{reason="auth"}); -1 if absent.
double metric(const std::string& api, const std::string& name) {
  auto m = run_command({"/usr/bin/curl", "-s", "http://" + api + "/metrics"});
  const std::string key = "\n" + name + " ";
  const auto at = m.out.find(key);
  if (at == std::string::npos) return -1;
  return std::strtod(m.out.c_str() + at + key.size(), nullptr);
}

// The bundle file a node holds for revision `id` of app web, "" if none.
fs::path bundle_file(const fs::path& data_dir, const std::string& id) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data_dir / "revisions" / "web", ec)) {
    if (e.path().stem() == id) return e.path();
  }
  return {};
}

class MeshSwarmTest : public MeshFixture {
 protected:
  int node_count() const override { return 6; }

  // Adds 64 MiB of incompressible bytes to the revision.
  void add_blob() {
    std::mt19937_64 rng(99);
    std::string bytes(kBlobBytes, '\0');
    for (std::size_t i = 0; i + 8 <= bytes.size(); i += 8) {
      const std::uint64_t v = rng();
      std::memcpy(bytes.data() + i, &v, 8);
    }
    std::ofstream(dir_ / "rev" / "content" / "blob.bin", std::ios::binary) << bytes;
    blob_ = std::move(bytes);
  }

  std::string blob_;
};

TEST_F(MeshSwarmTest, SixNodesHoldTheSameBytesAndTheOriginUploadsLessThanTwoCopies) {
  add_blob();
  const json d = deploy("all", "CodeDeployDefault.AllAtOnce");
  ASSERT_EQ(d["status"], "Succeeded") << d.dump(2);
  const std::string id = d["revision"];
  const fs::path origin_file = bundle_file(nodes_[0]->data_dir(), id);
  ASSERT_FALSE(origin_file.empty());
  const std::string origin_bytes = slurp(origin_file);
  const double size = static_cast<double>(origin_bytes.size());
  ASSERT_GT(size, static_cast<double>(kBlobBytes));  // random bytes do not compress
  double downloaded = 0;
  for (int i = 0; i < node_count(); ++i) {
    const fs::path f = bundle_file(nodes_[i]->data_dir(), id);
    ASSERT_FALSE(f.empty()) << "host-" << i + 1;
    EXPECT_TRUE(slurp(f) == origin_bytes) << "host-" << i + 1 << " holds different bytes";
    EXPECT_TRUE(slurp(root(i) / "srv" / "app" / "blob.bin") == blob_) << "host-" << i + 1;
    if (i > 0) downloaded += metric(nodes_[i]->api(), "meshdeploy_swarm_download_bytes_total");
  }
  const double origin_up = metric(nodes_[0]->api(), "meshdeploy_swarm_upload_bytes_total");
  EXPECT_GE(origin_up, size);  // every piece left the origin once at least
  EXPECT_LT(origin_up, 2 * size);
  EXPECT_EQ(downloaded, 5 * size);  // each host downloaded exactly one verified copy
  EXPECT_EQ(metric(nodes_[0]->api(), "meshdeploy_swarm_pieces_rejected_total"), 0);
}

TEST_F(MeshSwarmTest, ADownloaderKilledMidwayResumesFromItsPieces) {
  add_blob();
  // host-7 downloads at 4 MB/s at most, so the bundle takes it about 17 s.
  std::string seed = read_file(nodes_[0]->data_dir() / "gossip.addr");
  auto slow = std::make_unique<node_process>(
      "host-7", dir_ / "host-7" / "data", dir_ / "host-7" / "root",
      std::vector<std::string>{"role=web"},
      std::vector<std::string>{"--keyring", (keys() / "keyring.txt").string(), "--admin-pub",
                               (keys() / "admin.pub").string(), "--grant",
                               (keys() / "tester.grant").string(), "--bind", "127.0.0.1:0",
                               "--gossip-profile", "local", "--join",
                               seed.substr(0, seed.find('\n')), "--max-download-rate", "4M"});
  ASSERT_FALSE(slow->api().empty());
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 600; ++i) {
    auto m = json::parse(cli(0, {"members", "-o", "json"}).out, nullptr, false);
    int alive = 0;
    if (m.is_object()) {
      for (const auto& x : m["members"]) alive += x["status"] == "alive";
    }
    if (alive == node_count() + 1) break;
    ASSERT_LT(std::chrono::steady_clock::now() - t0, 30s) << "host-7 did not join";
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(cli(0, {"group", "create", "--app", "web", "--name", "all", "--tag", "role=web",
                    "--config", "CodeDeployDefault.AllAtOnce"})
                .exit_code,
            0);
  auto r =
      cli(0, {"deploy", "--app", "web", "--group", "all", "--source", (dir_ / "rev").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string dep = r.out.substr(0, r.out.find('\n'));
  // Kill it once it holds about a third.
  double before_kill = 0;
  for (int i = 0; i < 1200; ++i) {
    before_kill = metric(slow->api(), "meshdeploy_swarm_download_bytes_total");
    if (before_kill >= kBlobBytes / 3.0) break;
    std::this_thread::sleep_for(25ms);
  }
  ASSERT_GE(before_kill, kBlobBytes / 3.0) << read_file(slow->log_path());
  slow->kill_hard();
  ASSERT_TRUE(slow->start()) << read_file(slow->log_path());
  // Killed inside its update window, host-7 fails its part honestly (docs/agent.md: an
  // interrupted host is not run again) and the deployment succeeds on the others; the group's
  // next deployment (of the same revision) deals with host-7, and its fetch resumes from the
  // pieces verified before the kill.
  const json d = status_until(0, dep, settled, 120s);
  ASSERT_EQ(d["status"], "Succeeded") << d.dump(2);
  const std::string id = d["revision"];
  EXPECT_TRUE(bundle_file(slow->data_dir(), id).empty());
  auto again = cli(0, {"deploy", "--app", "web", "--group", "all", "--source",
                       (dir_ / "rev").string(), "--wait"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  const fs::path f = bundle_file(slow->data_dir(), id);
  ASSERT_FALSE(f.empty()) << read_file(slow->log_path());
  EXPECT_TRUE(slurp(f) == slurp(bundle_file(nodes_[0]->data_dir(), id)));
  // After the restart it fetched only what it had not verified before the kill.
  const double after = metric(slow->api(), "meshdeploy_swarm_download_bytes_total");
  const double size = static_cast<double>(fs::file_size(f));
  EXPECT_GT(after, 0);
  EXPECT_LE(after, size - before_kill + 8 * swarm::default_piece_size);
  EXPECT_NE(read_file(slow->log_path()).find("resuming with"), std::string::npos);
  EXPECT_TRUE(slurp(dir_ / "host-7" / "root" / "srv" / "app" / "blob.bin") == blob_);
}

TEST_F(MeshSwarmTest, OnlyAHolderOfTheKeyringGetsPieces) {
  const json d = deploy("all", "CodeDeployDefault.AllAtOnce");
  ASSERT_EQ(d["status"], "Succeeded") << d.dump(2);
  const std::string id = d["revision"];
  std::string seed = read_file(nodes_[0]->data_dir() / "gossip.addr");
  seed = seed.substr(0, seed.find('\n'));
  const double uploads = metric(nodes_[0]->api(), "meshdeploy_swarm_upload_bytes_total");

  boost::asio::io_context io;
  auto run_until = [&io](const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end && !done()) io.run_for(20ms);
    return done();
  };
  auto driver = [&](const gossip::keyring& ring, const std::string& name) {
    mesh::gossip_options o;
    o.bind = "127.0.0.1:0";
    o.cfg = gossip::config::local();
    o.join.push_back(seed);
    auto g =
        std::make_unique<mesh::gossip_driver>(io, ring, gossip::node_meta{name, {}, {}, 1, 1}, o);
    EXPECT_TRUE(g->start());
    return g;
  };
  std::vector<swarm::swarm_message> got;
  auto listen = [&got](mesh::gossip_driver& g) {
    g.set_user_handler([&got](std::uint8_t type, std::span<const std::byte> p, const std::string&) {
      if (type != mesh::user_type_swarm) return;
      if (auto m = swarm::decode_swarm_message(p)) got.push_back(std::move(m).value());
    });
  };

  // Outside the cluster: its packets fail authentication, it never becomes a member, so it has
  // nobody to ask, and the origin serves nothing.
  auto outsider = driver(gossip::keyring(gossip::secret_key::generate()), "outsider");
  listen(*outsider);
  EXPECT_FALSE(run_until([&] { return !outsider->live_peers().empty(); }, 5s));
  EXPECT_FALSE(
      outsider->send_user("host-1", mesh::user_type_swarm,
                          swarm::encode_swarm_message(swarm::manifest_request_msg{"web", id})));
  run_until([] { return false; }, 1s);
  EXPECT_TRUE(got.empty());
  EXPECT_GT(metric(nodes_[0]->api(), "meshdeploy_gossip_dropped_total{reason=\"auth\"}"), 0);
  EXPECT_EQ(metric(nodes_[0]->api(), "meshdeploy_swarm_upload_bytes_total"), uploads);
  outsider.reset();

  // With the keyring, the same requests get the manifest and a piece that verifies (from host-2:
  // the origin declines pieces that others already serve).
  auto ring = gossip::parse_keyring(read_file(keys() / "keyring.txt"), "keyring.txt");
  ASSERT_TRUE(ring) << ring.error().message;
  auto member = driver(ring.value(), "insider");
  listen(*member);
  ASSERT_TRUE(run_until(
      [&] {
        const auto peers = member->live_peers();
        return std::find(peers.begin(), peers.end(), "host-2") != peers.end();
      },
      15s));
  // host-2 answers once it has learned of "insider" too (gossip): ask until it does.
  for (int attempt = 0; attempt < 15 && got.empty(); ++attempt) {
    ASSERT_TRUE(
        member->send_user("host-2", mesh::user_type_swarm,
                          swarm::encode_swarm_message(swarm::manifest_request_msg{"web", id})));
    run_until([&] { return !got.empty(); }, 2s);
  }
  ASSERT_FALSE(got.empty());
  const auto* man = std::get_if<swarm::manifest_msg>(&got[0]);
  ASSERT_NE(man, nullptr);
  auto m = swarm::decode_manifest(man->bytes);
  ASSERT_TRUE(m);
  ASSERT_TRUE(
      member->send_user("host-2", mesh::user_type_swarm,
                        swarm::encode_swarm_message(swarm::hello_msg{"web", id, {}, false})));
  ASSERT_TRUE(member->send_user("host-2", mesh::user_type_swarm,
                                swarm::encode_swarm_message(swarm::request_msg{id, 0})));
  const swarm::piece_msg* piece = nullptr;
  ASSERT_TRUE(run_until(
      [&] {
        for (const auto& x : got) {
          if ((piece = std::get_if<swarm::piece_msg>(&x)) != nullptr) return true;
        }
        return false;
      },
      10s));
  EXPECT_EQ(swarm::hash_piece(piece->data), m.value().pieces[0]);
}

}  // namespace
}  // namespace meshdeploy::test

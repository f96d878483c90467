// Hostile records injected on the wire: an in-process gossip driver holding the cluster keyring
// (so its packets pass the encryption layer, as a compromised host's would) joins a real
// `meshdeploy node run` process and pushes tampered, forged, wrongly written and replayed
// records through the replication protocol. The node must store none of them, count each by
// reason in /metrics, and keep serving.
#include "gossip/keyring.h"
#include "node/mesh/gossip_driver.h"
#include "node/records/payloads.h"
#include "node/records/sync_messages.h"
#include "node/security/identity.h"
#include "tests/support/process.h"
#include "tests/support/signed_records.h"
#include "tests/support/temp_dir.h"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

namespace meshdeploy::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The value of a Prometheus sample line `name{labels} value` (0 when absent).
double metric(const std::string& text, const std::string& sample) {
  const auto pos = text.find("\n" + sample + " ");
  if (pos == std::string::npos) return 0;
  return std::stod(text.substr(pos + sample.size() + 2));
}

TEST(RecordsWireTest, ForgedTamperedAndMisattributedRecordsAreRejectedAndCounted) {
  temp_dir dir{"meshdeploy-wire"};
  node_process node("node-1", dir / "data", dir / "root", {"role=web"},
                    {"--gossip-profile", "local"});
  ASSERT_FALSE(node.api().empty()) << read_file(node.log_path());
  ASSERT_EQ(node.cli({"app", "create", "web"}).exit_code, 0);

  // The intruder: a gossip member with the cluster keyring, but no operator or admin key.
  auto ring = gossip::parse_keyring(read_file(node.cluster_dir() / "keyring.txt"), "keyring");
  ASSERT_TRUE(ring) << ring.error().message;
  boost::asio::io_context io;
  mesh::gossip_options o;
  o.bind = "127.0.0.1:0";
  o.cfg = gossip::config::local();
  std::string seed = read_file(node.data_dir() / "gossip.addr");
  o.join.push_back(seed.substr(0, seed.find('\n')));
  mesh::gossip_driver intruder(io, ring.value(), gossip::node_meta{"intruder", {}, {}, 1, 1}, o);
  ASSERT_TRUE(intruder.start());
  for (int i = 0; i < 200; ++i) {
    io.run_for(20ms);
    if (!intruder.live_peers().empty()) break;
  }
  ASSERT_EQ(intruder.live_peers(), std::vector<std::string>{"node-1"});

  const auto tester = security::load_identity(node.cluster_dir() / "tester.key").value();
  const auto stranger = security::generate_identity("stranger");
  test_signers s;
  s.op = tester;
  std::vector<records::record> hostile;
  // 1. Tampered: a valid operator record whose payload changed after signing.
  auto tampered = s.sign(records::application_payload{"api", false});
  tampered.payload = records::encode_payload(records::application_payload{"evil", false});
  tampered.key = "evil";
  hostile.push_back(tampered);
  // 2. A grant not signed by the admin key.
  s.admin = stranger;
  hostile.push_back(s.grant({"*:*"}, 9, &stranger));
  // 3. Progress claiming to come from node-1, signed by another key.
  records::progress_payload p;
  p.deployment_id = "d-AAAAAAAAA";
  p.host = "node-1";
  p.phase = "resolved";
  hostile.push_back(s.sign(p, 1, &stranger));
  // 4. A record signed by a key nobody granted (kept pending, never stored).
  hostile.push_back(s.sign(records::application_payload{"shadow", false}, 1, &stranger));

  const std::string before = node.cli({"app", "list", "-o", "json"}).out;
  records::push_msg push;
  for (const auto& r : hostile) push.records.push_back(records::encode(r));
  ASSERT_TRUE(
      intruder.send_user("node-1", mesh::user_type_records, records::encode_sync_message(push)));
  // 5. A valid operator record relayed by the intruder is accepted; its replay changes nothing.
  records::push_msg valid;
  valid.records.push_back(records::encode(s.sign(records::application_payload{"wired", false})));
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(
        intruder.send_user("node-1", mesh::user_type_records, records::encode_sync_message(valid)));
  }
  // Garbage in the replication channel.
  ASSERT_TRUE(intruder.send_user("node-1", mesh::user_type_records,
                                 std::vector<std::byte>(100, std::byte{0x7f})));

  std::string m;
  for (int i = 0; i < 200; ++i) {
    io.run_for(20ms);
    auto r = run_command({"/usr/bin/curl", "-sf", "http://" + node.api() + "/metrics"});
    m = "\n" + r.out;
    if (metric(m, "meshdeploy_records_rejected_total{reason=\"message\"}") >= 1 &&
        metric(m, "meshdeploy_records_stale_total") >= 1) {
      break;
    }
  }
  EXPECT_GE(metric(m, "meshdeploy_records_rejected_total{reason=\"bad_signature\"}"), 1) << m;
  EXPECT_GE(metric(m, "meshdeploy_records_rejected_total{reason=\"permission_denied\"}"), 2) << m;
  EXPECT_GE(metric(m, "meshdeploy_records_rejected_total{reason=\"message\"}"), 1) << m;
  EXPECT_GE(metric(m, "meshdeploy_records_pending"), 1) << m;
  EXPECT_GE(metric(m, "meshdeploy_records_stale_total"), 1) << m;
  // Nothing hostile was stored; the valid record was; the node still answers.
  const std::string after = node.cli({"app", "list", "-o", "json"}).out;
  EXPECT_NE(after, before);
  EXPECT_NE(after.find("\"wired\""), std::string::npos) << after;
  EXPECT_EQ(after.find("evil"), std::string::npos) << after;
  EXPECT_EQ(after.find("shadow"), std::string::npos) << after;
  auto prog = node.cli({"-o", "json", "audit"});
  EXPECT_EQ(prog.exit_code, 0);
  EXPECT_EQ(prog.out.find("evil"), std::string::npos);
  EXPECT_EQ(prog.out.find("shadow"), std::string::npos);
  EXPECT_EQ(node.cli({"audit", "verify"}).exit_code, 0);
  intruder.leave();
  io.run_for(200ms);
}

}  // namespace
}  // namespace meshdeploy::test

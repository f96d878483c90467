// Malformed traffic at a live node (docs/reliability.md, "Fuzzing"): three real nodes on
// loopback; one of them receives N hostile UDP datagrams on its gossip port (random bytes,
// truncated and bit-flipped sealed packets, packets sealed with the cluster key around garbage,
// a valid envelope around a garbage body, one valid packet replayed over and over) and TCP
// garbage on its gossip and API ports. Afterwards: the node still runs, every node still sees
// the same three members alive at the same incarnations, and the node's resident memory grew
// by less than 10% over its size after a warm-up of the same traffic.
//
// N: MESHDEPLOY_FLOOD_DATAGRAMS (default 50,000; the soak test `integ_flood_soak` sends
// 1,000,000). The datagrams are paced (MESHDEPLOY_FLOOD_RATE per second, default 20,000) so
// that the point is what the node does with them, not the kernel dropping a full socket buffer.
#include "gossip/codec.h"
#include "gossip/keyring.h"
#include "gossip/packet_crypto.h"
#include "node/mesh/envelope.h"
#include "tests/integ/mesh_fixture.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/write.hpp>

#include <random>

namespace meshdeploy::test {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

class DatagramFloodTest : public MeshFixture {
 protected:
  int node_count() const override { return 3; }

  static std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
  }

  // VmRSS of `pid` in KiB (0 when unreadable).
  static long rss_kib(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("VmRSS:")) return std::strtol(line.c_str() + 6, nullptr, 10);
    }
    return 0;
  }

  static bool alive(int pid) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
  }

  // Node i's view: name -> "status incarnation", sorted.
  std::map<std::string, std::string> view(int i) {
    std::map<std::string, std::string> out;
    auto m = json::parse(cli(i, {"members", "-o", "json"}).out, nullptr, false);
    if (!m.is_object()) return out;
    for (const auto& x : m["members"]) {
      out[x.value("name", "?")] =
          x.value("status", "?") + " " + (x.contains("incarnation") ? x["incarnation"].dump() : "");
    }
    return out;
  }

  static udp::endpoint endpoint_of(const std::string& host_port) {
    const auto colon = host_port.rfind(':');
    return {asio::ip::make_address(host_port.substr(0, colon)),
            static_cast<unsigned short>(std::stoul(host_port.substr(colon + 1)))};
  }

  static std::vector<std::byte> bytes(std::mt19937_64& rng, std::size_t n) {
    std::vector<std::byte> b(n);
    for (auto& x : b) x = static_cast<std::byte>(rng());
    return b;
  }

  static std::vector<std::byte> envelope(const std::string& name, std::uint64_t epoch,
                                         std::uint64_t seq, std::span<const std::byte> body) {
    return mesh::encode_envelope(name, 1, epoch, seq, body);
  }

  // Sends `count` hostile datagrams (and a TCP connection with garbage every 1,000) to node
  // `target`, paced at `rate` per second.
  void flood(int target, std::uint64_t count, std::uint64_t rate, std::uint64_t first_seed) {
    const std::string gossip_addr = [&] {
      std::string s = read_file(nodes_[target]->data_dir() / "gossip.addr");
      return s.substr(0, s.find('\n'));
    }();
    const udp::endpoint to = endpoint_of(gossip_addr);
    const tcp::endpoint gossip_tcp(to.address(), to.port());
    const udp::endpoint api_udp = endpoint_of(nodes_[target]->api());
    const tcp::endpoint api_tcp(api_udp.address(), api_udp.port());
    auto ring = gossip::parse_keyring(read_file(keys() / "keyring.txt"), "keyring.txt");
    ASSERT_TRUE(ring.has_value()) << ring.error().message;
    const gossip::associated_context ctx{"meshdeploy", 1, 1};
    std::mt19937_64 rng(first_seed);
    // One valid ping from a sender that is not a member, sent once and then replayed.
    gossip::ping_msg ping;
    ping.seq = 7;
    ping.target = "host-" + std::to_string(target + 1);
    ping.source_name = "flood-sender";
    ping.source = {"127.0.0.1", 9};
    const auto replayed =
        gossip::seal(ring.value(), envelope("flood-sender", 1, 0, gossip::encode(ping)), ctx);

    asio::io_context io;
    udp::socket sock(io, udp::endpoint(udp::v4(), 0));
    const auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < count; ++i) {
      std::vector<std::byte> d;
      switch (i % 8) {
        case 0:  // random bytes, 0 to 1,500
          d = bytes(rng, rng() % 1501);
          break;
        case 1: {  // a sealed packet cut short
          d = gossip::seal(ring.value(), bytes(rng, 40 + rng() % 200), ctx);
          d.resize(rng() % d.size());
          break;
        }
        case 2: {  // a sealed packet with one bit flipped
          d = gossip::seal(ring.value(), envelope("flood-x", 1, i, bytes(rng, 30)), ctx);
          d[rng() % d.size()] ^= static_cast<std::byte>(1u << (rng() % 8));
          break;
        }
        case 3:  // sealed garbage: authenticates, no envelope
          d = gossip::seal(ring.value(), bytes(rng, rng() % 300), ctx);
          break;
        case 4: {  // a valid envelope (a new sender name now and then) around a garbage body
          const std::string name = "flood-" + std::to_string(rng() % 64);
          d = gossip::seal(ring.value(), envelope(name, 1 + i, i, bytes(rng, rng() % 400)), ctx);
          break;
        }
        case 5:  // the same valid packet again: a replay
          d = replayed;
          break;
        case 6: {  // a header naming another version or an unknown key
          d = gossip::seal(ring.value(), bytes(rng, 60), ctx);
          d[rng() % 2] = static_cast<std::byte>(rng());
          break;
        }
        default: {  // a valid envelope around a truncated real message
          auto body = gossip::encode(ping);
          body.resize(rng() % body.size());
          d = gossip::seal(ring.value(), envelope("flood-sender", 1, 1000 + i, body), ctx);
          break;
        }
      }
      boost::system::error_code ec;
      sock.send_to(asio::buffer(d.data(), d.size()), to, 0, ec);  // drops are fine
      if (i % 1000 == 999) {
        for (const tcp::endpoint& ep : {gossip_tcp, api_tcp}) {
          tcp::socket s(io);
          s.connect(ep, ec);
          if (!ec) {
            const auto junk = bytes(rng, 1 + rng() % 2000);
            asio::write(s, asio::buffer(junk.data(), junk.size()), ec);
          }
        }
      }
      // Pacing: never ahead of `rate` per second.
      const auto due = t0 + std::chrono::microseconds((i + 1) * 1'000'000 / rate);
      if (i % 100 == 99 && std::chrono::steady_clock::now() < due) {
        std::this_thread::sleep_until(due);
      }
    }
  }
};

TEST_F(DatagramFloodTest, MalformedTrafficChangesNothing) {
  const std::uint64_t count = env_number("MESHDEPLOY_FLOOD_DATAGRAMS", 50'000);
  const std::uint64_t rate =
      std::max<std::uint64_t>(env_number("MESHDEPLOY_FLOOD_RATE", 20'000), 1);
  const int target = 1;
  const int pid = nodes_[target]->pid();
  std::vector<std::map<std::string, std::string>> before;
  for (int i = 0; i < node_count(); ++i) before.push_back(view(i));
  ASSERT_EQ(before[0].size(), 3u);
  // Warm-up: the same traffic (10,000 datagrams), so that buffers and caches that are allocated
  // once are in the baseline.
  flood(target, 10'000, rate, 1);
  std::this_thread::sleep_for(1s);
  const long rss_before = rss_kib(pid);
  ASSERT_GT(rss_before, 0);
  const auto t0 = std::chrono::steady_clock::now();
  flood(target, count, rate, 2);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::this_thread::sleep_for(2s);  // let the node drain its socket
  ASSERT_TRUE(alive(pid)) << read_file(nodes_[target]->log_path());
  const long rss_after = rss_kib(pid);
  const double growth = 100.0 * static_cast<double>(rss_after - rss_before) / rss_before;
  std::cout << "flood: " << count << " datagrams in " << seconds << " s; VmRSS " << rss_before
            << " KiB -> " << rss_after << " KiB (" << growth << " %)\n";
  EXPECT_LT(growth, 10.0);
  for (int i = 0; i < node_count(); ++i) {
    EXPECT_EQ(view(i), before[i]) << "node " << i + 1 << "'s view of the membership changed";
  }
  // It still answers and still gossips: its API works and it counts the drops.
  auto m = cli(target, {"members", "-o", "json"});
  EXPECT_EQ(m.exit_code, 0) << m.err;
}

}  // namespace
}  // namespace meshdeploy::test

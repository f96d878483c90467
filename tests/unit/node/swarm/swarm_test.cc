// The swarm state machine between a few in-process nodes (messages delivered in order through a
// queue, virtual time), storage in memory (tests/support/memory_piece_store.h). Many peers,
// bandwidth and loss are the simulator's business (tests/sim/swarm_sim_test.cc).
#include "node/swarm/swarm.h"

#include "tests/support/memory_piece_store.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <random>

namespace meshdeploy::swarm {
namespace {

using testing::memory_bundle;
using testing::memory_piece_store;
using namespace std::chrono_literals;

memory_bundle make_bundle(std::size_t size, std::uint32_t piece_size = min_piece_size) {
  std::mt19937_64 rng(3);
  std::vector<std::byte> bytes(size);
  for (auto& b : bytes) b = static_cast<std::byte>(rng());
  return memory_bundle::make(std::move(bytes), piece_size, "origin");
}

struct net {
  struct node {
    std::unique_ptr<memory_piece_store> store;
    std::unique_ptr<swarm> s;
    std::optional<result<std::filesystem::path>> done;
    std::vector<std::uint64_t> progress;
  };
  struct msg {
    std::string from, to;
    std::vector<std::byte> bytes;
  };

  const memory_bundle& b;
  std::map<std::string, node> nodes;
  std::deque<msg> queue;
  time_point now = time_point{} + 1h;
  std::function<bool(const msg&)> drop;                    // loses a message when true
  std::map<std::string, std::map<std::string, int>> sent;  // from -> message kind -> count

  explicit net(const memory_bundle& bundle) : b(bundle) {}

  swarm& add(const std::string& name, bool complete, swarm_config cfg = {}, bool corrupt = false) {
    node& n = nodes[name];
    n.store = std::make_unique<memory_piece_store>(b, complete, name == b.ref.origin, corrupt);
    n.s = std::make_unique<swarm>(
        cfg,
        swarm_env{[this, name](const std::string& peer, gossip::frame_buffer sent_bytes) {
                    auto bytes = sent_bytes.to_vector();
                    auto m = decode_swarm_message(bytes);
                    if (m) ++sent[name][std::to_string(m.value().index())];
                    queue.push_back(msg{name, peer, std::move(bytes)});
                  },
                  [this, name](const std::string&, std::uint64_t held, std::uint64_t) {
                    nodes[name].progress.push_back(held);
                  }},
        *n.store);
    return *n.s;
  }
  void fetch(const std::string& name, std::vector<std::string> candidates) {
    node& n = nodes[name];
    n.s->fetch(
        b.ref, std::move(candidates),
        [&n](result<std::filesystem::path> r) { n.done = std::move(r); }, now);
  }
  // Delivers queued messages (at most `limit`), ticking every node each 1,000 messages.
  void run(std::size_t limit = 200000) {
    for (std::size_t i = 0; i < limit && !queue.empty(); ++i) {
      msg m = std::move(queue.front());
      queue.pop_front();
      if (drop && drop(m)) continue;
      auto it = nodes.find(m.to);
      if (it == nodes.end()) continue;
      it->second.s->on_message(m.from, m.bytes, now);
    }
  }
  void advance(std::chrono::milliseconds d) {
    now += d;
    for (auto& [name, n] : nodes) n.s->on_tick(now);
  }
  int count(const std::string& from, std::size_t kind) { return sent[from][std::to_string(kind)]; }
};

constexpr std::size_t k_request = 2, k_piece = 3;  // variant indexes

TEST(SwarmTest, ADownloaderGetsEveryPieceFromTheOrigin) {
  const auto b = make_bundle(10 * min_piece_size + 123);
  net n(b);
  n.add("origin", true);
  n.add("a", false);
  n.fetch("a", {"origin"});
  n.run();
  ASSERT_TRUE(n.nodes["a"].done.has_value());
  ASSERT_TRUE(n.nodes["a"].done->has_value()) << n.nodes["a"].done->error().message;
  EXPECT_TRUE(n.nodes["a"].store->complete());
  EXPECT_EQ(n.nodes["a"].store->bad_stored, 0u);
  EXPECT_EQ(n.nodes["a"].s->stats().download_bytes, b.bytes.size());
  EXPECT_EQ(n.nodes["origin"].s->stats().upload_bytes, b.bytes.size());
  ASSERT_FALSE(n.nodes["a"].progress.empty());
  EXPECT_EQ(n.nodes["a"].progress.back(), b.bytes.size());
}

TEST(SwarmTest, PeersServeEachOtherAndTheOriginSeedsEachPieceAboutOnce) {
  const auto b = make_bundle(64 * min_piece_size);
  net n(b);
  n.add("origin", true);
  std::vector<std::string> names = {"a", "b", "c", "d", "e"};
  for (const auto& x : names) n.add(x, false);
  for (const auto& x : names) {
    std::vector<std::string> c = {"origin"};
    for (const auto& y : names) {
      if (y != x) c.push_back(y);
    }
    n.fetch(x, c);
  }
  n.run();
  for (int i = 0; i < 30; ++i) {  // declined pieces are asked again after reseed_after
    n.advance(1s);
    n.run();
  }
  std::uint64_t from_peers = 0;
  for (const auto& x : names) {
    ASSERT_TRUE(n.nodes[x].done.has_value()) << x;
    ASSERT_TRUE(n.nodes[x].done->has_value()) << x;
    from_peers += n.nodes[x].s->stats().upload_bytes;
  }
  // Without bandwidth the order of delivery decides; the origin must not have sent everything
  // to everyone, and the peers must have served one another.
  EXPECT_LT(n.nodes["origin"].s->stats().upload_bytes, 2 * b.bytes.size());
  EXPECT_GT(from_peers, 2 * b.bytes.size());
  EXPECT_GT(n.nodes["origin"].s->stats().requests_declined, 0u);
}

TEST(SwarmTest, APeerSendingABadPieceIsDroppedAndNothingBadIsStored) {
  const auto b = make_bundle(16 * min_piece_size);
  net n(b);
  n.add("evil", true, {}, /*corrupt=*/true);
  n.add("origin", true);
  n.add("a", false);
  n.fetch("a", {"evil", "origin"});
  n.run();
  for (int i = 0; i < 10 && !n.nodes["a"].done; ++i) {
    n.advance(1s);
    n.run();
  }
  ASSERT_TRUE(n.nodes["a"].done.has_value());
  ASSERT_TRUE(n.nodes["a"].done->has_value()) << n.nodes["a"].done->error().message;
  EXPECT_EQ(n.nodes["a"].store->bad_stored, 0u);
  EXPECT_GE(n.nodes["a"].s->stats().pieces_rejected, 1u);
  EXPECT_EQ(n.nodes["a"].s->stats().peers_dropped, 1u);
  // Banned: it is never asked again after its first bad piece.
  const int asked = n.count("a", k_request);
  EXPECT_EQ(n.nodes["a"].s->stats().pieces_verified, b.m.piece_count());
  EXPECT_LE(n.count("evil", k_piece), static_cast<int>(swarm_config{}.requests_per_peer));
  EXPECT_GE(asked, static_cast<int>(b.m.piece_count()));
}

TEST(SwarmTest, AManifestThatDoesNotMatchTheSignedNameIsRefused) {
  const auto b = make_bundle(4 * min_piece_size);
  auto other = make_bundle(4 * min_piece_size, 2 * min_piece_size);  // same bytes, other cut
  other.ref = b.ref;                                                 // claims to be b's bundle
  net n(b);
  n.add("a", false);
  // "liar" answers with the other manifest: a store that holds `other` under b's id.
  net::node& liar = n.nodes["liar"];
  liar.store = std::make_unique<memory_piece_store>(other, true);
  liar.s = std::make_unique<swarm>(
      swarm_config{},
      swarm_env{[&n](const std::string& peer, gossip::frame_buffer bytes) {
                  n.queue.push_back(net::msg{"liar", peer, bytes.to_vector()});
                },
                nullptr},
      *liar.store);
  n.add("origin", true);
  auto ref = b.ref;
  ref.origin = "liar";  // asked for the manifest first
  n.nodes["a"].s->fetch(
      ref, {"liar", "origin"},
      [&n](result<std::filesystem::path> r) { n.nodes["a"].done = std::move(r); }, n.now);
  n.run();
  ASSERT_TRUE(n.nodes["a"].done.has_value());
  ASSERT_TRUE(n.nodes["a"].done->has_value()) << n.nodes["a"].done->error().message;
  EXPECT_EQ(n.nodes["a"].s->stats().peers_dropped, 1u);
  EXPECT_EQ(n.nodes["a"].store->bad_stored, 0u);
}

TEST(SwarmTest, AResumedDownloadAsksOnlyForTheMissingPieces) {
  const auto b = make_bundle(8 * min_piece_size);
  net n(b);
  n.add("origin", true);
  n.add("a", false);
  n.nodes["a"].store->held = {true, true, true, false, true, true, false, true};
  n.fetch("a", {"origin"});
  n.run();
  ASSERT_TRUE(n.nodes["a"].done.has_value());
  ASSERT_TRUE(n.nodes["a"].done->has_value());
  EXPECT_EQ(n.count("a", k_request), 2);
  EXPECT_EQ(n.nodes["a"].s->stats().download_bytes, 2u * min_piece_size);
}

TEST(SwarmTest, LostRequestsAreAskedAgainAfterTheTimeout) {
  const auto b = make_bundle(8 * min_piece_size);
  net n(b);
  n.add("origin", true);
  swarm_config cfg;
  cfg.request_timeout = 2s;
  n.add("a", false, cfg);
  int dropped = 0;
  n.drop = [&dropped](const net::msg& m) {
    auto d = decode_swarm_message(m.bytes);
    return d && d.value().index() == k_piece && dropped++ < 3;
  };
  n.fetch("a", {"origin"});
  n.run();
  EXPECT_FALSE(n.nodes["a"].done.has_value());
  for (int i = 0; i < 10 && !n.nodes["a"].done; ++i) {
    n.advance(1s);
    n.run();
  }
  ASSERT_TRUE(n.nodes["a"].done.has_value());
  EXPECT_TRUE(n.nodes["a"].done->has_value());
}

TEST(SwarmTest, NobodyHoldingItFailsTheDownloadAfterTheStallTimeout) {
  const auto b = make_bundle(4 * min_piece_size);
  net n(b);
  swarm_config cfg;
  cfg.stall_timeout = 10s;
  n.add("a", false, cfg);
  n.add("b", false);  // neither holds nor fetches it: answers none
  n.fetch("a", {"b"});
  n.run();
  for (int i = 0; i < 12 && !n.nodes["a"].done; ++i) {
    n.advance(1s);
    n.run();
  }
  ASSERT_TRUE(n.nodes["a"].done.has_value());
  ASSERT_FALSE(n.nodes["a"].done->has_value());
  EXPECT_NE(n.nodes["a"].done->error().message.find("not even its manifest"), std::string::npos)
      << n.nodes["a"].done->error().message;
}

TEST(SwarmTest, AStoreThatCannotReserveTheBundleFailsTheDownloadWithItsError) {
  const auto b = make_bundle(4 * min_piece_size);
  net n(b);
  n.add("origin", true);
  n.add("a", false);
  n.nodes["a"].store->fail_open = true;
  n.fetch("a", {"origin"});
  n.run();
  ASSERT_TRUE(n.nodes["a"].done.has_value());
  ASSERT_FALSE(n.nodes["a"].done->has_value());
  EXPECT_NE(n.nodes["a"].done->error().message.find("no space left"), std::string::npos);
  EXPECT_EQ(n.nodes["a"].store->writes, 0u);
}

TEST(SwarmTest, TheUploadRateLimitSpacesPiecesOut) {
  const auto b = make_bundle(8 * min_piece_size);
  net n(b);
  swarm_config slow;
  slow.max_upload_rate = min_piece_size;  // one piece a second
  n.add("origin", true, slow);
  n.add("a", false);
  n.fetch("a", {"origin"});
  n.run();
  // The bucket starts with one piece's burst; the rest go one per second.
  EXPECT_LE(n.nodes["a"].s->stats().pieces_verified, 2u);
  for (int i = 0; i < 3; ++i) {
    n.advance(1s);
    n.run();
  }
  EXPECT_LE(n.nodes["a"].s->stats().pieces_verified, 5u);
  for (int i = 0; i < 10 && !n.nodes["a"].done; ++i) {
    n.advance(1s);
    n.run();
  }
  ASSERT_TRUE(n.nodes["a"].done.has_value());
  EXPECT_TRUE(n.nodes["a"].done->has_value());
}

TEST(SwarmTest, APeerThatGoesDownHasItsRequestsMovedElsewhere) {
  const auto b = make_bundle(16 * min_piece_size);
  net n(b);
  n.add("origin", true);
  n.add("other", true);
  n.add("a", false);
  // "other" vanishes: nothing it sends arrives.
  n.drop = [](const net::msg& m) { return m.from == "other" || m.to == "other"; };
  n.fetch("a", {"other", "origin"});
  n.run();
  n.nodes["a"].s->on_peer_down("other", n.now);
  n.run();
  for (int i = 0; i < 10 && !n.nodes["a"].done; ++i) {
    n.advance(1s);
    n.run();
  }
  ASSERT_TRUE(n.nodes["a"].done.has_value());
  EXPECT_TRUE(n.nodes["a"].done->has_value());
}

}  // namespace
}  // namespace meshdeploy::swarm

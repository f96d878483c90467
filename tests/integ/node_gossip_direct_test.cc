// Two real gossip drivers on loopback (real UDP and TCP sockets, sealed with a
// shared key) exchange large direct messages through the driver's user API.
#include "gossip/errc.h"
#include "gossip/keyring.h"
#include "gossip/messages.h"
#include "node/mesh/gossip_driver.h"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace meshdeploy::mesh {
namespace {

using namespace std::chrono_literals;

struct received {
  std::uint8_t type = 0;
  std::vector<std::byte> payload;
  std::string from;
};

class GossipDirectTest : public ::testing::Test {
 protected:
  GossipDirectTest() : ring_(gossip::secret_key::generate()) {}

  std::unique_ptr<gossip_driver> start(const std::string& name, const std::string& join,
                                       gossip_options o = {}) {
    o.bind = "127.0.0.1:0";
    o.cfg = gossip::config::local();
    if (!join.empty()) o.join.push_back(join);
    auto d = std::make_unique<gossip_driver>(io_, ring_, gossip::node_meta{name, {}, {}, 1, 1}, o);
    auto r = d->start();
    EXPECT_TRUE(r) << r.error().message;
    return d;
  }

  // Runs the io_context until `done` or `limit` passes.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (done()) return true;
      io_.run_for(20ms);
    }
    return done();
  }

  static std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> out(n);
    std::uint32_t x = seed;
    for (auto& b : out) {
      x = x * 1664525u + 1013904223u;
      b = static_cast<std::byte>(x >> 24);
    }
    return out;
  }

  boost::asio::io_context io_;
  gossip::keyring ring_;
};

TEST_F(GossipDirectTest, TwoNodesExchangeOneMebibyteDirectMessages) {
  auto a = start("alpha", "");
  std::vector<received> at_a, at_b;
  std::vector<gossip::member_event> events_at_a;
  a->set_user_handler([&](std::uint8_t t, std::span<const std::byte> p, const std::string& from) {
    at_a.push_back({t, {p.begin(), p.end()}, from});
  });
  a->set_event_handler([&](const gossip::member_event& e) { events_at_a.push_back(e); });
  auto b = start("beta", a->local_address());
  b->set_user_handler([&](std::uint8_t t, std::span<const std::byte> p, const std::string& from) {
    at_b.push_back({t, {p.begin(), p.end()}, from});
  });
  ASSERT_TRUE(run_until(
      [&] {
        return a->live_peers() == std::vector<std::string>{"beta"} && !b->live_peers().empty();
      },
      10s));
  EXPECT_EQ(b->live_peers(), std::vector<std::string>{"alpha"});
  ASSERT_FALSE(events_at_a.empty());
  EXPECT_EQ(events_at_a[0].type, gossip::member_event::kind::join);
  EXPECT_EQ(events_at_a[0].who.meta.name, "beta");

  const auto to_b = pattern(1u << 20, 1);
  const auto to_a = pattern(1u << 20, 2);
  ASSERT_TRUE(a->send_user("beta", user_type_records, to_b));
  ASSERT_TRUE(b->send_user("alpha", user_type_swarm, to_a));
  ASSERT_TRUE(run_until([&] { return !at_a.empty() && !at_b.empty(); }, 10s));
  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_EQ(at_b[0].type, user_type_records);
  EXPECT_EQ(at_b[0].from, "alpha");
  EXPECT_TRUE(at_b[0].payload == to_b);
  ASSERT_EQ(at_a.size(), 1u);
  EXPECT_EQ(at_a[0].type, user_type_swarm);
  EXPECT_EQ(at_a[0].from, "beta");
  EXPECT_TRUE(at_a[0].payload == to_a);
  EXPECT_EQ(a->counters().dropped_auth, 0u);
  EXPECT_EQ(b->counters().stream_errors, 0u);
}

TEST_F(GossipDirectTest, BroadcastArrivesWithItsOriginName) {
  auto a = start("alpha", "");
  auto b = start("beta", a->local_address());
  std::vector<received> at_b;
  b->set_user_handler([&](std::uint8_t t, std::span<const std::byte> p, const std::string& from) {
    at_b.push_back({t, {p.begin(), p.end()}, from});
  });
  ASSERT_TRUE(run_until([&] { return a->live_peers().size() == 1; }, 10s));
  ASSERT_TRUE(a->broadcast(user_type_deployments, pattern(100, 3)));
  ASSERT_TRUE(run_until([&] { return !at_b.empty(); }, 10s));
  EXPECT_EQ(at_b[0].from, "alpha");
  EXPECT_TRUE(at_b[0].payload == pattern(100, 3));
}

TEST_F(GossipDirectTest, SendToUnknownMemberOrOversizedPayloadIsAnError) {
  auto a = start("alpha", "");
  auto unknown = a->send_user("nobody", 1, pattern(10, 1));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, gossip::errc::unknown_member);
  EXPECT_NE(unknown.error().message.find("nobody"), std::string::npos);

  auto b = start("beta", a->local_address());
  ASSERT_TRUE(run_until([&] { return a->live_peers().size() == 1; }, 10s));
  auto big = a->send_user("beta", 1, std::vector<std::byte>(gossip::max_direct_payload_bytes + 1));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, gossip::errc::too_large);

  // A member that left gracefully is no longer a valid target.
  b->leave();
  ASSERT_TRUE(run_until([&] { return a->live_peers().empty(); }, 10s));
  auto gone = a->send_user("beta", 1, pattern(10, 1));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, gossip::errc::unknown_member);
}

// Direct messages to one peer share one sealed connection (each message one frame of it).
TEST_F(GossipDirectTest, ManyDirectMessagesShareOneConnectionInOrder) {
  auto a = start("alpha", "");
  auto b = start("beta", a->local_address());
  std::vector<received> at_b;
  b->set_user_handler([&](std::uint8_t t, std::span<const std::byte> p, const std::string& from) {
    at_b.push_back({t, {p.begin(), p.end()}, from});
  });
  ASSERT_TRUE(run_until([&] { return a->live_peers().size() == 1; }, 10s));
  const auto opened_before = a->counters().streams_opened;
  constexpr int messages = 200;
  for (int i = 0; i < messages; ++i) {
    ASSERT_TRUE(a->send_user("beta", user_type_records, pattern(100 + i, i)));
  }
  ASSERT_TRUE(run_until([&] { return at_b.size() == messages; }, 10s));
  for (int i = 0; i < messages; ++i) {
    EXPECT_TRUE(at_b[i].payload == pattern(100 + i, i)) << "message " << i;
    EXPECT_EQ(at_b[i].from, "alpha");
  }
  // At most one new connection (none if the join's push/pull already opened it).
  EXPECT_LE(a->counters().streams_opened - opened_before, 1u);
  EXPECT_GE(a->counters().frames_reused, static_cast<std::uint64_t>(messages - 1));
  EXPECT_EQ(b->counters().dropped_replay, 0u);
  EXPECT_EQ(b->counters().dropped_auth, 0u);
  EXPECT_EQ(a->counters().stream_errors, 0u);
}

// An idle connection is closed by its sender; the next message opens a new one.
TEST_F(GossipDirectTest, IdleConnectionClosesAndNextMessageOpensANewOne) {
  gossip_options quick;
  quick.outbound_idle = 200ms;
  auto a = start("alpha", "", quick);
  auto b = start("beta", a->local_address());
  int at_b = 0;
  b->set_user_handler(
      [&](std::uint8_t, std::span<const std::byte>, const std::string&) { ++at_b; });
  ASSERT_TRUE(run_until([&] { return a->live_peers().size() == 1; }, 10s));
  ASSERT_TRUE(a->send_user("beta", user_type_records, pattern(10, 1)));
  ASSERT_TRUE(run_until([&] { return at_b == 1; }, 10s));
  const auto opened = a->counters().streams_opened;
  io_.run_for(600ms);  // past outbound_idle: a closes it
  ASSERT_TRUE(a->send_user("beta", user_type_records, pattern(10, 2)));
  ASSERT_TRUE(run_until([&] { return at_b == 2; }, 10s));
  EXPECT_GE(a->counters().streams_opened, opened + 1);
  EXPECT_EQ(b->counters().dropped_replay, 0u);
}

// Over its incoming limit a node closes the least recently used session; the sender notices the
// close and opens a fresh connection for its next message, so nothing is lost between messages.
TEST_F(GossipDirectTest, IncomingLimitEvictsOldestSessionAndSenderReconnects) {
  gossip_options one;
  one.max_inbound_streams = 1;
  auto b = start("beta", "", one);
  auto a = start("alpha", b->local_address());
  auto c = start("gamma", b->local_address());
  std::vector<received> at_b;
  b->set_user_handler([&](std::uint8_t t, std::span<const std::byte> p, const std::string& from) {
    at_b.push_back({t, {p.begin(), p.end()}, from});
  });
  ASSERT_TRUE(
      run_until([&] { return a->live_peers().size() == 2 && c->live_peers().size() == 2; }, 10s));
  for (int round = 0; round < 3; ++round) {
    for (auto* sender : {a.get(), c.get()}) {
      const std::size_t before = at_b.size();
      ASSERT_TRUE(sender->send_user("beta", user_type_records, pattern(50, round)));
      ASSERT_TRUE(run_until([&] { return at_b.size() == before + 1; }, 10s))
          << "round " << round << " from " << (sender == a.get() ? "alpha" : "gamma");
      io_.run_for(50ms);  // let the evicted sender see the close
    }
  }
  EXPECT_GE(b->counters().streams_evicted, 4u);
  EXPECT_EQ(b->counters().dropped_auth, 0u);
  EXPECT_EQ(b->counters().dropped_replay, 0u);
}

}  // namespace
}  // namespace meshdeploy::mesh

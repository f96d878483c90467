// A deterministic in-memory network and a manual clock for tests of sans-IO
// protocol cores (gossip membership now, the simulator later). Nodes attach
// at an address and get a gossip::transport bound to it; sent bytes are
// queued with a delivery time and handed to the receiver's handlers when the
// test (or simulator) calls deliver_until(). Links can drop packets, add
// delay and jitter, and be cut one way or both ways. All randomness comes
// from one seeded engine, so a run replays exactly by seed.
#pragma once

#include "gossip/transport.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <vector>

namespace meshdeploy::test {

using time_point = std::chrono::steady_clock::time_point;
using duration = std::chrono::steady_clock::duration;

// Time that only moves when told to. Starts at an arbitrary fixed epoch (not zero, so code that
// treats time_point{} as "never" is exercised honestly).
class manual_clock {
 public:
  manual_clock() = default;
  [[nodiscard]] time_point now() const { return now_; }
  void advance(duration d) { now_ += d; }
  // REQUIRES: t >= now() (time never goes back).
  void set(time_point t) {
    if (t > now_) now_ = t;
  }

 private:
  time_point now_ = time_point{} + std::chrono::hours(1);
};

// Behaviour of a one-way link. Streams are reliable (never dropped by `drop`) but are cut by
// partitions like packets, as a refused TCP connection would be.
struct link_params {
  double drop = 0.0;  // probability that a packet is lost, in [0, 1]
  duration delay = std::chrono::milliseconds(1);
  duration jitter{};  // extra delay, uniform in [0, jitter]
};

struct network_counters {
  std::uint64_t packets_sent = 0;
  std::uint64_t packets_delivered = 0;
  std::uint64_t packets_dropped = 0;  // lost by `drop`, a cut link or an unknown receiver
  std::uint64_t streams_sent = 0;
  std::uint64_t streams_delivered = 0;
  std::uint64_t streams_dropped = 0;
  std::uint64_t bytes_sent = 0;  // packets and streams
};

// Threading: single-threaded; handlers run inside deliver_until() on the caller's thread.
class in_memory_network {
 public:
  using handler = std::function<void(const gossip::address& from, std::vector<std::byte> bytes)>;

  explicit in_memory_network(std::uint64_t seed);
  ~in_memory_network();
  in_memory_network(const in_memory_network&) = delete;
  in_memory_network& operator=(const in_memory_network&) = delete;

  // Registers a node at `at` and returns the transport it sends with (sender address `at`).
  // The network owns the transport; it lives until detach(at) or the network's destruction.
  // Re-attaching an address replaces the handlers (a restarted process).
  gossip::transport& attach(const gossip::address& at, handler on_packet, handler on_stream);

  // Removes the node: bytes sent to it are dropped (a crashed host). Its transport stays
  // usable but what it sends is dropped too.
  void detach(const gossip::address& at);

  // Link behaviour: the default for every pair, and overrides for one direction.
  void set_default_link(link_params p) { default_link_ = p; }
  void set_link(const gossip::address& from, const gossip::address& to, link_params p);

  // Cuts traffic from `from` to `to` (one way), or restores it.
  void cut(const gossip::address& from, const gossip::address& to);
  void restore(const gossip::address& from, const gossip::address& to);
  // Cuts both directions between every member of `a` and every member of `b`.
  void partition(const std::vector<gossip::address>& a, const std::vector<gossip::address>& b);
  // Removes every cut.
  void heal() { cuts_.clear(); }

  // Queues bytes as if `from` sent them at `now` (used by the transports; also lets tests
  // inject raw bytes from any address).
  void send(const gossip::address& from, const gossip::address& to, std::vector<std::byte> bytes,
            bool stream, time_point now);

  // Delivers, in (time, send order), every queued message due at or before `t`, including
  // ones sent by handlers during this call. Returns how many were handed to handlers. Bounded:
  // stops after max_events deliveries.
  std::size_t deliver_until(time_point t, std::size_t max_events = 1'000'000);

  // The time of the earliest queued delivery, if any.
  [[nodiscard]] std::optional<time_point> next_delivery() const;

  // The time the transports stamp on what they send. Set by the driver before it runs a node.
  void set_now(time_point now) { now_ = now; }
  [[nodiscard]] time_point now() const { return now_; }

  [[nodiscard]] const network_counters& counters() const { return counters_; }

 private:
  class bound_transport;
  struct in_flight {
    gossip::address from;
    gossip::address to;
    std::vector<std::byte> bytes;
    bool stream = false;
  };
  struct node {
    handler on_packet;
    handler on_stream;
  };

  [[nodiscard]] bool is_cut(const gossip::address& from, const gossip::address& to) const;
  [[nodiscard]] const link_params& link(const gossip::address& from,
                                        const gossip::address& to) const;
  double uniform01();

  std::mt19937_64 rng_;
  time_point now_{};
  std::uint64_t next_seq_ = 0;
  link_params default_link_;
  std::map<std::pair<gossip::address, gossip::address>, link_params> links_;
  std::set<std::pair<gossip::address, gossip::address>> cuts_;
  std::map<gossip::address, node> nodes_;
  std::map<gossip::address, std::unique_ptr<bound_transport>> transports_;
  std::map<std::pair<time_point, std::uint64_t>, in_flight> queue_;
  network_counters counters_;
};

}  // namespace meshdeploy::test

#include "tests/support/in_memory_network.h"

#include <utility>

namespace meshdeploy::test {

class in_memory_network::bound_transport final : public gossip::transport {
 public:
  bound_transport(in_memory_network& net, gossip::address self)
      : net_(net), self_(std::move(self)) {}
  void send_packet(const gossip::address& to, std::vector<std::byte> bytes) override {
    send(to, std::move(bytes), false);
  }
  void send_stream(const gossip::address& to, std::vector<std::byte> bytes) override {
    send(to, std::move(bytes), true);
  }

 private:
  void send(const gossip::address& to, std::vector<std::byte> bytes, bool stream) {
    if (!net_.nodes_.contains(self_)) {  // a detached (crashed) node sends nothing
      (stream ? net_.counters_.streams_dropped : net_.counters_.packets_dropped)++;
      return;
    }
    net_.send(self_, to, std::move(bytes), stream, net_.now());
  }

  in_memory_network& net_;
  gossip::address self_;
};

in_memory_network::in_memory_network(std::uint64_t seed) : rng_(seed) {}
in_memory_network::~in_memory_network() = default;

gossip::transport& in_memory_network::attach(const gossip::address& at, handler on_packet,
                                             handler on_stream) {
  nodes_[at] = node{std::move(on_packet), std::move(on_stream)};
  auto& t = transports_[at];
  if (!t) t = std::make_unique<bound_transport>(*this, at);
  return *t;
}

void in_memory_network::detach(const gossip::address& at) { nodes_.erase(at); }

void in_memory_network::set_link(const gossip::address& from, const gossip::address& to,
                                 link_params p) {
  links_[{from, to}] = p;
}

void in_memory_network::cut(const gossip::address& from, const gossip::address& to) {
  cuts_.insert({from, to});
}

void in_memory_network::restore(const gossip::address& from, const gossip::address& to) {
  cuts_.erase({from, to});
}

void in_memory_network::partition(const std::vector<gossip::address>& a,
                                  const std::vector<gossip::address>& b) {
  for (const auto& x : a) {
    for (const auto& y : b) {
      cut(x, y);
      cut(y, x);
    }
  }
}

bool in_memory_network::is_cut(const gossip::address& from, const gossip::address& to) const {
  return cuts_.contains({from, to});
}

const link_params& in_memory_network::link(const gossip::address& from,
                                           const gossip::address& to) const {
  auto it = links_.find({from, to});
  return it == links_.end() ? default_link_ : it->second;
}

double in_memory_network::uniform01() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

void in_memory_network::send(const gossip::address& from, const gossip::address& to,
                             std::vector<std::byte> bytes, bool stream, time_point now) {
  (stream ? counters_.streams_sent : counters_.packets_sent)++;
  counters_.bytes_sent += bytes.size();
  const auto& p = link(from, to);
  // Draw from the RNG the same number of times whatever the outcome, so that changing one
  // link's loss does not reshuffle every later random choice.
  const double lose = uniform01();
  const double jit = uniform01();
  if (!stream && lose < p.drop) {
    counters_.packets_dropped++;
    return;
  }
  const auto delay = p.delay + std::chrono::duration_cast<duration>(p.jitter * jit);
  queue_.emplace(std::pair{now + delay, next_seq_++},
                 in_flight{from, to, std::move(bytes), stream});
}

std::size_t in_memory_network::deliver_until(time_point t, std::size_t max_events) {
  std::size_t delivered = 0;
  while (!queue_.empty() && delivered < max_events) {
    auto it = queue_.begin();
    if (it->first.first > t) break;
    const time_point at = it->first.first;
    in_flight m = std::move(it->second);
    queue_.erase(it);
    auto& dropped = m.stream ? counters_.streams_dropped : counters_.packets_dropped;
    // Cuts apply at delivery too: a partition that starts while bytes are in flight loses them.
    auto n = nodes_.find(m.to);
    if (n == nodes_.end() || is_cut(m.from, m.to)) {
      dropped++;
      continue;
    }
    (m.stream ? counters_.streams_delivered : counters_.packets_delivered)++;
    ++delivered;
    if (at > now_) now_ = at;
    // Copy the handler: it may attach/detach nodes and so invalidate `n`.
    auto h = m.stream ? n->second.on_stream : n->second.on_packet;
    if (h) h(m.from, std::move(m.bytes));
  }
  return delivered;
}

std::optional<time_point> in_memory_network::next_delivery() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.begin()->first.first;
}

}  // namespace meshdeploy::test

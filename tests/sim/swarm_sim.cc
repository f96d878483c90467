#include "tests/sim/swarm_sim.h"

#include "node/swarm/manifest.h"
#include "tests/support/memory_piece_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>

namespace meshdeploy::sim {

namespace sw = meshdeploy::swarm;

namespace {

struct queued {
  std::vector<std::byte> bytes;
  double remaining;  // bytes still to send
};

struct node {
  std::string name;
  std::unique_ptr<testing::memory_piece_store> store;
  std::unique_ptr<sw::swarm> s;
  bool alive = true;
  bool corrupt = false;
  // Uplink: one FIFO per destination, served fairly.
  std::map<std::size_t, std::deque<queued>> out;
  double out_updated = 0;
  std::uint64_t out_version = 0;
  double tick_at = std::numeric_limits<double>::infinity();
  std::optional<double> done_at;
  bool failed = false;
};

enum class kind { deliver, uplink, tick, crash, down };

struct event {
  double t;
  std::uint64_t seq;
  kind k;
  std::size_t node;
  std::size_t other = 0;      // deliver: sender; down: who went down
  std::uint64_t version = 0;  // uplink
  std::vector<std::byte> bytes;
  bool operator>(const event& e) const { return t != e.t ? t > e.t : seq > e.seq; }
};

class world {
 public:
  explicit world(const swarm_sim_options& o) : o_(o), rng_(o.seed) {}

  swarm_sim_result run();

 private:
  sw::time_point at(double t) const {
    return sw::time_point{} + std::chrono::hours(1) +
           std::chrono::duration_cast<sw::clock::duration>(std::chrono::duration<double>(t));
  }
  double secs(sw::time_point tp) const {
    return std::chrono::duration<double>(tp - (sw::time_point{} + std::chrono::hours(1))).count();
  }
  void push(event e) {
    e.seq = seq_++;
    q_.push(std::move(e));
  }
  void send(std::size_t from, const std::string& to, std::vector<std::byte> bytes);
  void drain(node& n, double t);
  void reschedule(std::size_t i, double t);
  void arm_tick(std::size_t i);

  const swarm_sim_options& o_;
  std::mt19937_64 rng_;
  testing::memory_bundle bundle_;
  std::vector<node> nodes_;
  std::map<std::string, std::size_t> by_name_;
  std::priority_queue<event, std::vector<event>, std::greater<>> q_;
  std::uint64_t seq_ = 0;
  double now_ = 0;
  swarm_sim_result r_;
};

void world::send(std::size_t from, const std::string& to, std::vector<std::byte> bytes) {
  ++r_.messages;
  auto it = by_name_.find(to);
  if (it == by_name_.end()) return;
  node& n = nodes_[from];
  drain(n, now_);
  const double size = static_cast<double>(bytes.size()) + 64;  // framing and sealing
  n.out[it->second].push_back(queued{std::move(bytes), size});
  reschedule(from, now_);
}

// Advances node n's uplink to time t: every non-empty queue's head got an equal share.
void world::drain(node& n, double t) {
  const double dt = t - n.out_updated;
  n.out_updated = t;
  if (dt <= 0 || n.out.empty()) return;
  const double share = dt * o_.uplink_bytes_per_s / static_cast<double>(n.out.size());
  for (auto& [dst, fifo] : n.out) fifo.front().remaining -= share;
}

void world::reschedule(std::size_t i, double t) {
  node& n = nodes_[i];
  ++n.out_version;
  if (n.out.empty()) return;
  double least = std::numeric_limits<double>::infinity();
  for (auto& [dst, fifo] : n.out) least = std::min(least, fifo.front().remaining);
  const double when =
      t + std::max(0.0, least) * static_cast<double>(n.out.size()) / o_.uplink_bytes_per_s;
  push(event{when, 0, kind::uplink, i, 0, n.out_version, {}});
}

void world::arm_tick(std::size_t i) {
  node& n = nodes_[i];
  if (!n.alive) return;
  const auto next = n.s->next_deadline();
  if (next == sw::time_point::max()) return;
  // A microsecond late: the round trip through double seconds must not land a tick just
  // before the deadline (it would find nothing due and ask for the same deadline forever).
  const double t = std::max(now_, secs(next)) + 1e-6;
  if (t >= n.tick_at) return;
  n.tick_at = t;
  push(event{t, 0, kind::tick, i, 0, 0, {}});
}

swarm_sim_result world::run() {
  // The bundle: random bytes, its manifest and the record that names them.
  std::vector<std::byte> bytes(o_.bundle_bytes);
  for (auto& b : bytes) b = static_cast<std::byte>(rng_() & 0xff);
  bundle_ = testing::memory_bundle::make(std::move(bytes), o_.piece_size, "n0");

  const std::size_t n = std::max<std::size_t>(o_.nodes, 2);
  std::vector<std::size_t> others;
  for (std::size_t i = 1; i < n; ++i) others.push_back(i);
  std::shuffle(others.begin(), others.end(), rng_);
  std::set<std::size_t> corrupt(
      others.begin(),
      others.begin() + static_cast<std::ptrdiff_t>(std::min(o_.corrupt, others.size())));
  std::shuffle(others.begin(), others.end(), rng_);
  std::vector<std::size_t> leavers;
  for (std::size_t k = 0; k < others.size() && leavers.size() < o_.leavers; ++k) {
    if (corrupt.count(others[k]) == 0) leavers.push_back(others[k]);
  }

  nodes_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    node& nd = nodes_[i];
    nd.name = fmt::format("n{}", i);
    by_name_[nd.name] = i;
    nd.corrupt = corrupt.count(i) != 0;
    nd.store = std::make_unique<testing::memory_piece_store>(bundle_, i == 0, i == 0, nd.corrupt);
    sw::swarm_config cfg = o_.config;
    cfg.seed = o_.seed * 1000003 + i;
    nd.s = std::make_unique<sw::swarm>(
        cfg,
        sw::swarm_env{[this, i](const std::string& peer, gossip::frame_buffer bytes) {
                        send(i, peer, bytes.to_vector());
                      },
                      nullptr},
        *nd.store);
  }
  r_.s_over_b = static_cast<double>(o_.bundle_bytes) / o_.uplink_bytes_per_s;
  r_.t_star = r_.s_over_b + (std::ceil(std::log2(static_cast<double>(n) + 1)) - 1) *
                                static_cast<double>(o_.piece_size) / o_.uplink_bytes_per_s;
  std::uniform_real_distribution<double> crash_at(0, r_.s_over_b);
  for (auto i : leavers) push(event{crash_at(rng_), 0, kind::crash, i, 0, 0, {}});

  for (std::size_t i = 1; i < n; ++i) {
    std::vector<std::string> cands;
    for (std::size_t j = 0; j < n; ++j) {
      if (j != i) cands.push_back(nodes_[j].name);
    }
    nodes_[i].s->fetch(
        bundle_.ref, std::move(cands),
        [this, i](result<std::filesystem::path> r) {
          if (r) {
            nodes_[i].done_at = now_;
          } else {
            nodes_[i].failed = true;
            if (r_.first_error.empty()) {
              r_.first_error =
                  fmt::format("{} at {:.1f} s: {}", nodes_[i].name, now_, r.error().message);
            }
          }
        },
        at(0));
    arm_tick(i);
  }

  std::bernoulli_distribution lost(o_.loss);
  const double limit = static_cast<double>(o_.limit.count());
  auto finished = [&] {
    for (std::size_t i = 1; i < n; ++i) {
      const node& nd = nodes_[i];
      if (nd.alive && !nd.corrupt && !nd.done_at && !nd.failed) return false;
    }
    return true;
  };
  while (!q_.empty() && !finished()) {
    event e = q_.top();
    q_.pop();
    if (e.t > limit) break;
    now_ = e.t;
    node& nd = nodes_[e.node];
    switch (e.k) {
      case kind::uplink: {
        if (e.version != nd.out_version) break;
        drain(nd, now_);
        for (auto it = nd.out.begin(); it != nd.out.end();) {
          auto& fifo = it->second;
          while (!fifo.empty() && fifo.front().remaining <= 1e-6) {
            if (e.node == 0 && fifo.front().bytes.size() >= o_.piece_size) {
              r_.origin_last_piece_s = now_;
            }
            if (nd.alive && !lost(rng_)) {
              push(event{now_ + std::chrono::duration<double>(o_.latency).count(), 0, kind::deliver,
                         it->first, e.node, 0, std::move(fifo.front().bytes)});
            }
            fifo.pop_front();
          }
          it = fifo.empty() ? nd.out.erase(it) : std::next(it);
        }
        reschedule(e.node, now_);
        break;
      }
      case kind::deliver:
        if (!nd.alive || !nodes_[e.other].alive) break;
        nd.s->on_message(nodes_[e.other].name, e.bytes, at(now_));
        arm_tick(e.node);
        break;
      case kind::tick:
        if (!nd.alive || e.t != nd.tick_at) break;
        nd.tick_at = std::numeric_limits<double>::infinity();
        nd.s->on_tick(at(now_));
        arm_tick(e.node);
        break;
      case kind::crash: {
        if (!nd.alive) break;
        nd.alive = false;
        nd.out.clear();
        const double t = now_ + std::chrono::duration<double>(o_.detect_after).count();
        for (std::size_t j = 0; j < n; ++j) {
          if (j != e.node) push(event{t, 0, kind::down, j, e.node, 0, {}});
        }
        break;
      }
      case kind::down:
        if (!nd.alive) break;
        nd.s->on_peer_down(nodes_[e.other].name, at(now_));
        arm_tick(e.node);
        break;
    }
  }
  r_.end_s = now_;
  for (std::size_t i = 0; i < n; ++i) {
    const node& nd = nodes_[i];
    const auto& st = nd.s->stats();
    r_.total_upload_bytes += st.upload_bytes;
    if (i == 0) r_.origin_upload_bytes = st.upload_bytes;
    if (!nd.corrupt) {
      r_.pieces_rejected += st.pieces_rejected;
      r_.peers_dropped += st.peers_dropped;
    }
    r_.duplicate_pieces += st.duplicate_pieces;
    if (!nd.corrupt) r_.bad_stored += nd.store->bad_stored;
    if (i == 0 || !nd.alive || nd.corrupt) continue;
    ++r_.expected;
    if (nd.failed) ++r_.failed;
    if (nd.done_at) r_.done_s.push_back(*nd.done_at);
  }
  std::sort(r_.done_s.begin(), r_.done_s.end());
  return r_;
}

}  // namespace

double swarm_sim_result::quantile(double q) const {
  if (done_s.size() < expected || done_s.empty()) return std::numeric_limits<double>::infinity();
  const auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(done_s.size())));
  return done_s[std::min(done_s.size() - 1, k == 0 ? 0 : k - 1)];
}

swarm_sim_result run_swarm_sim(const swarm_sim_options& o) { return world(o).run(); }

}  // namespace meshdeploy::sim

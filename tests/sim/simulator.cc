#include "tests/sim/simulator.h"

#include "gossip/codec.h"
#include "gossip/math.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace meshdeploy::sim {
namespace {

using namespace std::chrono_literals;

bool is_live(gossip::member_state s) {
  return s == gossip::member_state::alive || s == gossip::member_state::suspect;
}

// At most this many violations are kept (one bug tends to repeat on every event).
constexpr std::size_t max_violations = 100;

}  // namespace

duration percentile(std::vector<duration> v, double p) {
  std::sort(v.begin(), v.end());
  const double rank = std::ceil(p * static_cast<double>(v.size()));
  const auto idx = static_cast<std::size_t>(std::max(1.0, rank)) - 1;
  return v[std::min(idx, v.size() - 1)];
}

double to_ms(duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// The transport handed to one node's membership: every send goes into the simulator's queue.
class simulator::node_transport final : public gossip::transport {
 public:
  node_transport(simulator& s, std::size_t index) : sim_(s), index_(index) {}
  void send_packet(const gossip::address& to, std::vector<std::byte> bytes) override {
    sim_.send(index_, to, std::move(bytes), false);
  }
  void send_stream(const gossip::address& to, std::vector<std::byte> bytes) override {
    sim_.send(index_, to, std::move(bytes), true);
  }

 private:
  simulator& sim_;
  std::size_t index_;
};

simulator::simulator(sim_options o)
    : opt_(std::move(o)),
      rng_(opt_.seed),
      // Not zero, so code that treats time_point{} as "never" is exercised honestly.
      epoch_(time_point{} + std::chrono::hours(1)),
      now_(epoch_) {
  if (opt_.checkpoint_interval.count() > 0) next_checkpoint_ = epoch_ + opt_.checkpoint_interval;
}

simulator::~simulator() {
  // Memberships borrow their transports: destroy them first.
  for (auto& s : nodes_) s->m.reset();
}

// ---- nodes and processes --------------------------------------------------------------------

std::size_t simulator::add_node() {
  const std::size_t i = nodes_.size();
  auto s = std::make_unique<slot>();
  s->name = fmt::format("n{}", i);
  s->addr =
      gossip::address{fmt::format("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255), 7946};
  by_name_.emplace(s->name, i);
  nodes_.push_back(std::move(s));
  start_process(i);
  return i;
}

void simulator::start_process(std::size_t i) {
  slot& s = *nodes_[i];
  s.gen++;
  s.up = true;
  s.left = false;
  s.frozen_until.reset();
  s.last_thaw.reset();
  s.pending.clear();
  s.scheduled.reset();
  s.views.clear();
  s.views.shrink_to_fit();
  s.started = now_;
  s.m.reset();
  s.transport = std::make_unique<node_transport>(*this, i);
  s.m = std::make_unique<gossip::membership>(opt_.cfg, gossip::node_meta{s.name, s.addr, {}, 1, 1},
                                             *s.transport, rng_(), pool_);
  s.m->set_event_handler([this, i](const gossip::member_event& ev) { on_member_event(i, ev); });
  if (opt_.trace_suspicions) {
    s.m->set_trace_handler([this, i](const gossip::trace_event& ev) { on_trace(i, ev); });
  }
  s.m->set_user_handler([this, i](std::uint8_t, std::span<const std::byte> payload,
                                  const gossip::address&, const std::string&) {
    if (payload.size() < 8) return;
    std::uint64_t id = 0;
    for (int b = 0; b < 8; ++b) {
      id |= static_cast<std::uint64_t>(payload[static_cast<std::size_t>(b)]) << (8 * b);
    }
    auto it = broadcasts_.find(id);
    if (it == broadcasts_.end() || i >= it->second.got.size()) return;
    auto& got = it->second.got[i];
    if (got) {
      fail(fmt::format("{} received broadcast {} twice", nodes_[i]->name, id));
      return;
    }
    got = now_;
  });
  by_addr_[s.addr] = i;
  reschedule(i, false);
}

void simulator::join(std::size_t i, std::size_t seed) { join_attempt(i, seed, nodes_[i]->gen, 1s); }

void simulator::join_attempt(std::size_t i, std::size_t seed, std::uint64_t gen, duration backoff) {
  slot& s = *nodes_[i];
  if (!s.up || s.gen != gen || s.left || s.m->live_count() > 1) return;
  // What the driver does (gossip/membership.h join): while nobody answered, retry the seed at
  // its current address with doubling backoff, capped at 30 s.
  if (!s.frozen_until && up(seed) && seed != i) {
    s.m->join({nodes_[seed]->addr}, now_);
    reschedule(i, false);
  }
  at(backoff, [this, i, seed, gen, backoff] {
    join_attempt(i, seed, gen, std::min<duration>(backoff * 2, std::chrono::seconds(30)));
  });
}

void simulator::start_cluster(std::size_t n, duration spacing) {
  if (n == 0) return;
  const std::size_t first = nodes_.size();
  for (std::size_t k = 0; k < n; ++k) add_node();
  for (std::size_t k = 1; k < n; ++k) {
    const std::size_t seed = first + random_below(k);
    at(spacing * static_cast<duration::rep>(k), [this, i = first + k, seed] {
      if (up(i)) join(i, seed);
    });
  }
  run_for(spacing * static_cast<duration::rep>(n - 1));
}

void simulator::start_cluster_from_snapshot(std::size_t n, duration spread) {
  if (n == 0) return;
  const std::size_t first = nodes_.size();
  for (std::size_t k = 0; k < n; ++k) add_node();
  gossip::push_pull_msg state;
  state.join = true;
  state.from = nodes_[first]->name;
  state.from_addr = nodes_[first]->addr;
  state.members.reserve(n);
  for (std::size_t k = first; k < first + n; ++k) {
    state.members.push_back(
        gossip::member{gossip::node_meta{nodes_[k]->name, nodes_[k]->addr, {}, 1, 1},
                       gossip::incarnation(), gossip::member_state::alive});
  }
  const auto bytes = gossip::encode(gossip::message{std::move(state)});
  const auto step = std::max<duration>(duration(1), spread / static_cast<duration::rep>(n));
  for (std::size_t k = first; k < first + n; ++k) {
    event e;
    e.t = now_ + step * static_cast<duration::rep>(k - first);
    e.k = kind::stream;
    e.node = k;
    e.gen = nodes_[k]->gen;
    e.from = nodes_[first]->addr;
    e.from_node = static_cast<std::uint32_t>(first);
    e.bytes = bytes;
    push(std::move(e));
  }
  run_for(step * static_cast<duration::rep>(n));
}

void simulator::crash(std::size_t i) {
  slot& s = *nodes_[i];
  if (!s.up) return;
  s.m.reset();
  s.transport.reset();
  s.up = false;
  s.gen++;
  s.pending.clear();
  s.frozen_until.reset();
  s.scheduled.reset();
  s.views = {};
  by_addr_.erase(s.addr);
  crashes_[i] = crash_rec{now_, s.addr, {}};
}

void simulator::restart(std::size_t i, std::size_t seed) {
  crash(i);
  nodes_[i]->addr.port++;
  start_process(i);
  join(i, seed);
}

void simulator::freeze(std::size_t i, duration d) {
  slot& s = *nodes_[i];
  if (!s.up) return;
  const time_point until = std::max(now_ + d, s.frozen_until.value_or(now_));
  s.frozen_until = until;
  s.scheduled.reset();
  event e;
  e.t = until;
  e.k = kind::thaw;
  e.node = i;
  e.gen = s.gen;
  push(std::move(e));
}

void simulator::leave(std::size_t i) {
  if (!up(i)) return;
  nodes_[i]->m->leave(now_);
  nodes_[i]->left = true;
  reschedule(i, false);
}

void simulator::partition(const std::vector<std::size_t>& a, const std::vector<std::size_t>& b,
                          bool one_way) {
  cut c{std::vector<char>(nodes_.size(), 0), std::vector<char>(nodes_.size(), 0)};
  for (auto i : a) c.from.at(i) = 1;
  for (auto i : b) c.to.at(i) = 1;
  if (!one_way) cuts_.push_back(cut{c.to, c.from});
  cuts_.push_back(std::move(c));
}

void simulator::at(duration after, std::function<void()> action) {
  event e;
  e.t = now_ + after;
  e.k = kind::action;
  e.action = std::move(action);
  push(std::move(e));
}

bool simulator::up(std::size_t i) const { return nodes_.at(i)->up; }
bool simulator::frozen(std::size_t i) const { return nodes_.at(i)->frozen_until.has_value(); }
bool simulator::live(std::size_t i) const { return nodes_.at(i)->up && !nodes_.at(i)->left; }

std::vector<std::size_t> simulator::live_nodes() const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (live(i)) out.push_back(i);
  }
  return out;
}

gossip::membership& simulator::node(std::size_t i) { return *nodes_.at(i)->m; }
const std::string& simulator::name(std::size_t i) const { return nodes_.at(i)->name; }

std::uint64_t simulator::random_below(std::uint64_t n) { return gossip::uniform_below(rng_, n); }

// ---- the event loop -------------------------------------------------------------------------

void simulator::push(event e) {
  e.seq = next_seq_++;
  queue_.push_back(std::move(e));
  std::push_heap(queue_.begin(), queue_.end(), later{});
}

void simulator::run_until(time_point end) {
  // Bounded: every iteration removes one queued event or one checkpoint, and a node's tick is
  // only re-queued at a time after the current one (reschedule enforces it).
  while (!queue_.empty() && queue_.front().t <= end) {
    if (next_checkpoint_ && *next_checkpoint_ < queue_.front().t) {
      now_ = std::max(now_, *next_checkpoint_);
      check_views();
      *next_checkpoint_ += opt_.checkpoint_interval;
      continue;
    }
    std::pop_heap(queue_.begin(), queue_.end(), later{});
    event e = std::move(queue_.back());
    queue_.pop_back();
    now_ = e.t;
    process(e);
  }
  while (next_checkpoint_ && *next_checkpoint_ <= end) {
    now_ = std::max(now_, *next_checkpoint_);
    check_views();
    *next_checkpoint_ += opt_.checkpoint_interval;
  }
  now_ = std::max(now_, end);
}

std::optional<duration> simulator::run_until_converged(duration limit, duration step) {
  const time_point start = now_;
  for (;;) {
    if (converged()) return now_ - start;
    if (now_ - start >= limit) return std::nullopt;
    run_for(step);
  }
}

void simulator::mix(std::uint64_t v) {
  for (int b = 0; b < 8; ++b) {
    trace_ ^= (v >> (8 * b)) & 0xff;
    trace_ *= 0x100000001b3ull;
  }
}

void simulator::process(event& e) {
  counters_.events++;
  mix(static_cast<std::uint64_t>((e.t - epoch_).count()));
  mix(static_cast<std::uint64_t>(e.k) << 32 | e.node);
  for (auto b : e.bytes) {
    trace_ ^= static_cast<std::uint8_t>(b);
    trace_ *= 0x100000001b3ull;
  }
  switch (e.k) {
    case kind::action:
      e.action();
      return;
    case kind::tick: {
      slot& s = *nodes_[e.node];
      if (!s.up || s.gen != e.gen || s.frozen_until || s.scheduled != e.t) return;  // stale
      s.scheduled.reset();
      counters_.ticks++;
      s.m->on_tick(now_);
      reschedule(e.node, true);
      return;
    }
    case kind::thaw: {
      slot& s = *nodes_[e.node];
      if (!s.up || s.gen != e.gen || s.frozen_until != e.t) return;  // stale or extended
      s.frozen_until.reset();
      s.last_thaw = now_;
      // Everything that arrived while frozen is handled now, in arrival order (a SIGCONT'd
      // process drains its socket buffer), then whatever timers are overdue run.
      auto held = std::move(s.pending);
      s.pending.clear();
      for (auto& p : held) deliver(p);
      reschedule(e.node, false);
      return;
    }
    case kind::packet:
    case kind::stream:
      deliver(e);
      return;
  }
}

void simulator::deliver(event& e) {
  slot& s = *nodes_[e.node];
  if (!s.up || s.gen != e.gen) {
    counters_.to_down_node++;
    return;
  }
  if (s.frozen_until) {
    s.pending.push_back(std::move(e));
    return;
  }
  if (opt_.trace_suspicions) {
    inbound_step in;
    in.at = now_ - epoch_;
    in.from = e.from_node;
    in.value = static_cast<std::uint32_t>(e.bytes.size());
    in.k = e.k == kind::packet ? inbound_step::kind::packet : inbound_step::kind::stream;
    record_inbound(e.node, in);
  }
  if (e.k == kind::packet) {
    counters_.packets_delivered++;
    s.m->on_packet(e.from, e.bytes, now_);
  } else {
    counters_.streams_delivered++;
    s.m->on_stream(e.from, e.bytes, now_);
  }
  reschedule(e.node, false);
}

void simulator::reschedule(std::size_t i, bool after_tick) {
  slot& s = *nodes_[i];
  if (!s.up || s.frozen_until) return;
  time_point d = s.m->next_deadline();
  if (after_tick && d <= now_) {
    // on_tick ran everything due at now, so its next deadline must be later; otherwise the
    // node would be ticked forever at the same instant.
    fail(fmt::format("{}: next_deadline() <= now right after on_tick(now)", s.name));
    d = now_ + std::chrono::milliseconds(1);
  }
  d = std::max(d, now_);
  if (s.scheduled == d) return;
  s.scheduled = d;
  event e;
  e.t = d;
  e.k = kind::tick;
  e.node = i;
  e.gen = s.gen;
  push(std::move(e));
}

// ---- the network ----------------------------------------------------------------------------

double simulator::uniform01() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

duration simulator::sample_latency() {
  const auto& n = opt_.net;
  double x = uniform01();
  if (n.lognormal_sigma > 0) {
    // Box-Muller from our own uniforms: std::normal_distribution differs between libraries.
    const double u1 = std::max(uniform01(), 1e-300);
    const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * M_PI * x);
    x = std::min(20.0, std::exp(n.lognormal_sigma * z));
  }
  return n.latency_base +
         duration(static_cast<duration::rep>(static_cast<double>(n.latency_jitter.count()) * x));
}

std::optional<duration> simulator::stream_loss_delay() {
  const auto& n = opt_.net;
  duration extra{};
  if (n.loss <= 0 || n.stream_retransmits <= 0) return extra;
  // SYN, SYN-ACK, first data segment; bulk data recovers by fast retransmit and is not modelled.
  const duration first_rto[] = {1s, 1s, 200ms};
  for (const duration rto0 : first_rto) {
    duration rto = rto0;
    int tries = 0;
    while (uniform01() < n.loss) {
      if (++tries > n.stream_retransmits) return std::nullopt;
      extra += rto;
      rto *= 2;
    }
  }
  return extra;
}

void simulator::send(std::size_t from, const gossip::address& to, std::vector<std::byte> bytes,
                     bool stream) {
  const auto& n = opt_.net;
  counters_.payload_bytes_sent += bytes.size();
  counters_.wire_bytes_sent +=
      bytes.size() + (stream ? n.stream_wire_overhead : n.packet_wire_overhead);
  if (stream) {
    counters_.streams_sent++;
  } else {
    counters_.packets_sent++;
    if (bytes.size() > n.mtu) {
      counters_.packets_over_mtu++;
      return;
    }
  }
  auto it = by_addr_.find(to);
  if (it == by_addr_.end() || !nodes_[it->second]->up) {
    counters_.to_down_node++;
    return;
  }
  const std::size_t target = it->second;
  for (const auto& c : cuts_) {
    if (from < c.from.size() && c.from[from] && target < c.to.size() && c.to[target]) {
      counters_.cut_by_partition++;
      return;
    }
  }
  if (!stream && n.loss > 0 && uniform01() < n.loss) {
    counters_.packets_lost++;
    return;
  }
  duration retransmit{};
  if (stream) {
    const auto d = stream_loss_delay();
    if (!d) {
      counters_.streams_failed++;
      return;
    }
    if (d->count() > 0) counters_.streams_delayed++;
    retransmit = *d;
  }
  const bool dup = !stream && n.duplicate > 0 && uniform01() < n.duplicate;
  event e;
  e.t = now_ + sample_latency() + (stream ? n.stream_extra + retransmit : duration{});
  e.k = stream ? kind::stream : kind::packet;
  e.node = target;
  e.gen = nodes_[target]->gen;
  e.from = nodes_[from]->addr;
  e.from_node = static_cast<std::uint32_t>(from);
  if (dup) {
    counters_.packets_duplicated++;
    event copy = e;
    copy.t = now_ + sample_latency();
    copy.bytes = bytes;
    push(std::move(copy));
  }
  e.bytes = std::move(bytes);
  push(std::move(e));
}

// ---- observation and invariants -------------------------------------------------------------

void simulator::fail(std::string what) {
  if (violations_.size() >= max_violations) return;
  violations_.push_back(violation{opt_.seed, now_ - epoch_, std::move(what)});
}

void simulator::on_member_event(std::size_t observer, const gossip::member_event& ev) {
  if (opt_.check_invariants) observe(observer, ev.who);
  if (ev.type != gossip::member_event::kind::fail) return;
  auto it = by_name_.find(ev.who.meta.name);
  if (it == by_name_.end()) return;
  const std::size_t subject = it->second;
  const slot& s = *nodes_[subject];
  auto c = crashes_.find(subject);
  if (c != crashes_.end() && ev.who.meta.addr == c->second.addr) {
    c->second.seen.emplace(observer, now_);  // keeps the first time
    return;
  }
  if (s.up && ev.who.meta.addr == s.addr) {
    // Frozen now, or thawed so recently that a suspicion raised during the stall may still run.
    const auto window = std::chrono::seconds(60);
    const bool was_frozen =
        s.frozen_until.has_value() || (s.last_thaw && now_ - *s.last_thaw < window);
    false_deaths_.push_back(false_death{now_ - epoch_, observer, subject, was_frozen, {}, {}});
    if (subject < traces_.size()) false_deaths_.back().trace = traces_[subject].steps;
    if (opt_.trace_suspicions) false_deaths_.back().inbound = inbound_of(observer);
  }
}

void simulator::record_inbound(std::size_t i, const inbound_step& step) {
  slot& s = *nodes_[i];
  if (s.inbound.size() < inbound_ring) {
    s.inbound.push_back(step);
  } else {
    s.inbound[s.inbound_next] = step;
  }
  s.inbound_next = (s.inbound_next + 1) % inbound_ring;
}

std::vector<inbound_step> simulator::inbound_of(std::size_t i) const {
  const slot& s = *nodes_[i];
  std::vector<inbound_step> out;
  out.reserve(s.inbound.size());
  // Oldest first: once the ring is full, the oldest entry is the next one to be overwritten.
  const std::size_t first = s.inbound.size() < inbound_ring ? 0 : s.inbound_next;
  for (std::size_t k = 0; k < s.inbound.size(); ++k) {
    out.push_back(s.inbound[(first + k) % s.inbound.size()]);
  }
  return out;
}

void simulator::on_trace(std::size_t observer, const gossip::trace_event& ev) {
  using k = gossip::trace_event::kind;
  auto subject = by_name_.find(std::string(ev.subject));
  if (subject == by_name_.end()) return;
  if (ev.k == k::heard_alive) {
    inbound_step in;
    in.at = now_ - epoch_;
    in.subject = static_cast<std::uint32_t>(subject->second);
    in.value = static_cast<std::uint32_t>(ev.inc.value());
    in.k = inbound_step::kind::heard_alive;
    record_inbound(observer, in);
    return;
  }
  if (traces_.size() < nodes_.size()) traces_.resize(nodes_.size());
  subject_trace& t = traces_[subject->second];
  trace_step step;
  step.at = now_ - epoch_;
  if (ev.deadline != time_point{}) step.deadline = ev.deadline - epoch_;
  step.observer = static_cast<std::uint32_t>(observer);
  if (!ev.from.empty()) {
    auto from = by_name_.find(std::string(ev.from));
    if (from != by_name_.end()) step.from = static_cast<std::uint32_t>(from->second);
  }
  step.inc = static_cast<std::uint32_t>(ev.inc.value());
  step.confirmations = static_cast<std::uint32_t>(ev.confirmations);
  step.queue_depth = static_cast<std::uint32_t>(ev.queue_depth);
  step.k = ev.k;
  step.via = ev.via;
  if (ev.k == k::suspected) {
    // A new episode starts when no node suspected the subject: forget the previous one (a false
    // death in it has copied it). Crashed observers are not subtracted, so with crashes an
    // episode may last longer than it should; max_trace_steps bounds it.
    if (t.open == 0) t.steps.clear();
    t.open++;
  }
  if ((ev.k == k::cleared || ev.k == k::declared_dead || ev.k == k::dead_received) && t.open > 0) {
    t.open--;
  }
  if (ev.k == k::refuted) {
    t.refuted_at = now_ - epoch_;
    t.refuted_inc = step.inc;
  }
  if (ev.k == k::cleared && step.inc == t.refuted_inc && t.refuted_at.count() > 0 &&
      step.at - t.refuted_at > late_clear_after) {
    late_clear_count_++;
    if (late_clears_.size() < max_late_clears) {
      late_clears_.push_back(late_clear{step.at, step.at - t.refuted_at, observer, subject->second,
                                        inbound_of(observer)});
    }
  }
  if (t.steps.size() < max_trace_steps) t.steps.push_back(step);
}

void simulator::observe(std::size_t observer, const gossip::member& m) {
  slot& o = *nodes_[observer];
  if (m.meta.name == o.name) return;
  auto who = by_name_.find(m.meta.name);
  if (who == by_name_.end() || m.meta.addr.host != nodes_[who->second]->addr.host) {
    fail(fmt::format("{} sees an unknown member {} at {}", o.name, m.meta.name,
                     m.meta.addr.to_string()));
    return;
  }
  if (m.inc.value() >= 0xffffffffu) {
    fail(fmt::format("{} sees {} at incarnation {}, beyond the simulator's views", o.name,
                     m.meta.name, m.inc.value()));
    return;
  }
  if (o.views.size() < nodes_.size()) o.views.resize(nodes_.size());
  seen& v = o.views[who->second];
  const auto inc = static_cast<std::uint32_t>(m.inc.value());
  if (!v.known || v.port != m.meta.addr.port) {
    // First sight, or a restarted process at a new address: a new history starts.
    v = seen{inc, 0, m.meta.addr.port, true};
  } else {
    if (inc < v.max_inc) {
      fail(fmt::format("{} sees {} at incarnation {} after having seen {}", o.name, m.meta.name,
                       inc, v.max_inc));
    }
    if (is_live(m.state) && v.gone_inc_plus1 != 0 && inc < v.gone_inc_plus1) {
      fail(fmt::format("{} sees {} {} at incarnation {} after it was dead/left at {}", o.name,
                       m.meta.name, gossip::to_string(m.state), inc, v.gone_inc_plus1 - 1));
    }
    v.max_inc = std::max(v.max_inc, inc);
  }
  if (!is_live(m.state)) v.gone_inc_plus1 = std::max(v.gone_inc_plus1, inc + 1);
}

void simulator::check_views() {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i]->up) continue;
    for (const auto& m : nodes_[i]->m->members()) observe(i, m);
  }
}

bool simulator::converged() const { return convergence_errors(1).empty(); }

std::vector<std::string> simulator::convergence_errors(std::size_t max) const {
  std::vector<std::string> out;
  const auto live = live_nodes();
  for (auto i : live) {
    for (auto j : live) {
      if (i == j) continue;
      if (out.size() >= max) return out;
      const slot& si = *nodes_[i];
      const slot& sj = *nodes_[j];
      auto m = si.m->find(sj.name);
      if (!m) {
        out.push_back(fmt::format("{} does not know {}", si.name, sj.name));
      } else if (m->state != gossip::member_state::alive) {
        out.push_back(fmt::format("{} sees {} {}", si.name, sj.name, gossip::to_string(m->state)));
      } else if (m->meta.addr != sj.addr) {
        out.push_back(fmt::format("{} sees {} at {}, it is at {}", si.name, sj.name,
                                  m->meta.addr.to_string(), sj.addr.to_string()));
      } else if (m->inc != sj.m->self_incarnation()) {
        out.push_back(fmt::format("{} sees {} at incarnation {}, it holds {}", si.name, sj.name,
                                  m->inc.value(), sj.m->self_incarnation().value()));
      }
    }
  }
  return out;
}

// ---- measurements ---------------------------------------------------------------------------

detection simulator::detection_of(std::size_t crashed) const {
  detection d;
  auto c = crashes_.find(crashed);
  if (c == crashes_.end()) return d;
  duration worst{};
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    // Observers: live now and already running when the node crashed.
    if (i == crashed || !live(i) || nodes_[i]->started > c->second.at) continue;
    auto s = c->second.seen.find(i);
    if (s == c->second.seen.end()) {
      d.missing++;
      continue;
    }
    d.per_observer.push_back(s->second - c->second.at);
    worst = std::max(worst, s->second - c->second.at);
  }
  if (d.missing == 0 && !d.per_observer.empty()) d.everyone = worst;
  return d;
}

std::uint64_t simulator::broadcast(std::size_t from, std::size_t bytes) {
  const std::uint64_t id = next_broadcast_++;
  std::vector<std::byte> payload(std::max<std::size_t>(8, bytes), std::byte{0x5a});
  for (int b = 0; b < 8; ++b) {
    payload[static_cast<std::size_t>(b)] = static_cast<std::byte>((id >> (8 * b)) & 0xff);
  }
  broadcasts_[id] = broadcast_rec{now_, from, std::vector<std::optional<time_point>>(size())};
  auto r = node(from).broadcast(1, std::move(payload));
  if (!r) fail(fmt::format("{}: broadcast {}: {}", name(from), id, r.error().message));
  reschedule(from, false);
  return id;
}

reach simulator::reach_of(std::uint64_t id) const {
  reach r;
  auto it = broadcasts_.find(id);
  if (it == broadcasts_.end()) return r;
  const auto& b = it->second;
  duration worst{};
  for (std::size_t i = 0; i < b.got.size(); ++i) {
    if (i == b.origin || !live(i)) continue;
    r.expected++;
    if (!b.got[i]) continue;
    r.reached++;
    r.per_node.push_back(*b.got[i] - b.sent);
    worst = std::max(worst, *b.got[i] - b.sent);
  }
  if (r.reached == r.expected) r.all = worst;
  return r;
}

}  // namespace meshdeploy::sim

#include "gossip/membership.h"

#include "gossip/codec.h"
#include "gossip/errc.h"
#include "gossip/math.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace meshdeploy::gossip {
namespace {

bool is_live(member_state s) { return s == member_state::alive || s == member_state::suspect; }

std::chrono::milliseconds to_ms(duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

// One member's term of the state digest: FNV-1a 64 (fixed and portable, unlike std::hash).
std::uint64_t member_hash(const std::string& name, incarnation inc) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](std::uint8_t b) {
    h ^= b;
    h *= 0x100000001b3ull;
  };
  for (char c : name) mix(static_cast<std::uint8_t>(c));
  mix(0);
  for (int i = 0; i < 8; ++i) mix(static_cast<std::uint8_t>(inc.value() >> (8 * i)));
  return h;
}

}  // namespace

membership::membership(const config& cfg, node_meta self, transport& t, std::uint64_t seed,
                       std::shared_ptr<meta_pool> pool)
    : cfg_(cfg),
      self_name_(self.name),
      transport_(t),
      rng_(seed),
      awareness_(cfg.awareness_max_multiplier),
      queue_(cfg.retransmit_mult, cfg.max_queued_broadcasts),
      pool_(pool ? std::move(pool) : std::make_shared<meta_pool>()) {
  entry e;
  e.meta = pool_->intern(self);
  e.state = member_state::alive;
  self_slot_ = members_.insert(std::move(e));
  reindex(self_slot_);
  live_count_ = 1;
  // A restarted process must not reuse the user message ids of its previous life (others
  // still remember them), so ids start at a random point.
  next_user_id_ = rng_();
  next_seq_ = static_cast<std::uint32_t>(rng_());
  queue_message(self_name_, alive_msg{incarnation(), *self_entry().meta});
}

// ---- small helpers --------------------------------------------------------------------------

const node_meta& membership::self() const { return *self_entry().meta; }
incarnation membership::self_incarnation() const { return self_entry().inc; }

membership::entry* membership::lookup(std::string_view name) {
  const slot_id id = members_.find(name);
  return id == member_table::none ? nullptr : &members_.at(id);
}

void membership::set_meta(entry& e, const node_meta& meta) {
  if (*e.meta != meta) e.meta = pool_->intern(meta);
}

std::vector<member> membership::members() const {
  std::vector<member> out;
  out.reserve(members_.size());
  for (slot_id id = 0; id < members_.slot_limit(); ++id) {
    if (members_.used(id)) out.push_back(snapshot(members_.at(id)));
  }
  std::sort(out.begin(), out.end(),
            [](const member& a, const member& b) { return a.meta.name < b.meta.name; });
  return out;
}

std::optional<member> membership::find(const std::string& name) const {
  const slot_id id = members_.find(name);
  if (id == member_table::none) return std::nullopt;
  return snapshot(members_.at(id));
}

void membership::set_state(entry& e, member_state s, time_point now) {
  if (e.state == s) return;
  if (is_live(e.state) && !is_live(s)) --live_count_;
  if (!is_live(e.state) && is_live(s)) ++live_count_;
  // A member in gone_ is keyed by its state_change: take it out before that changes.
  if (e.in_gone) {
    gone_.erase({e.state_change, members_.find(e.meta->name)});
    e.in_gone = false;
  }
  e.state = s;
  e.state_change = now;
  reindex(members_.find(e.meta->name));
}

void membership::reindex(slot_id id) {
  entry& e = members_.at(id);
  const bool live = is_live(e.state);
  // Dead and left members are left out of the digest: they are reaped at slightly different
  // times on different nodes and would make digests disagree for no useful reason.
  digest_ -= e.digest_part;
  e.digest_part = live ? member_hash(e.meta->name, e.inc) : 0;
  digest_ += e.digest_part;

  const bool self = id == self_slot_;
  const bool want_live = live && !self;
  if (want_live && e.live_pos == member_table::none) {
    e.live_pos = static_cast<slot_id>(live_peers_.size());
    live_peers_.push_back(id);
  } else if (!want_live && e.live_pos != member_table::none) {
    const slot_id last = live_peers_.back();
    live_peers_[e.live_pos] = last;
    members_.at(last).live_pos = e.live_pos;
    live_peers_.pop_back();
    e.live_pos = member_table::none;
  }

  const bool want_gone = !live && !self;
  if (e.in_gone && !want_gone) {
    gone_.erase({e.state_change, id});
    e.in_gone = false;
  }
  if (want_gone && !e.in_gone) {
    gone_.emplace(e.state_change, id);
    e.in_gone = true;
  }
}

std::vector<const membership::entry*> membership::pick_alive(std::size_t k,
                                                             const std::string& exclude) {
  std::vector<const entry*> out;
  if (k == 0 || live_peers_.empty()) return out;
  auto usable = [&](const entry* e) {
    return e->state == member_state::alive && e->meta->name != exclude &&
           std::find(out.begin(), out.end(), e) == out.end();
  };
  if (live_peers_.size() > 4 * k + 4) {
    // Large view: rejection sampling, a bounded number of draws.
    for (std::size_t draws = 0; draws < 8 * k + 16 && out.size() < k; ++draws) {
      const entry* e = &members_.at(live_peers_[uniform_below(rng_, live_peers_.size())]);
      if (usable(e)) out.push_back(e);
    }
    if (out.size() == k) return out;
    out.clear();
  }
  // Small view (or mostly suspects): choose among all candidates.
  std::vector<const entry*> candidates;
  for (const slot_id id : live_peers_) {
    const entry* e = &members_.at(id);
    if (e->state == member_state::alive && e->meta->name != exclude) candidates.push_back(e);
  }
  for (auto i : random_k(candidates.size(), k, rng_)) out.push_back(candidates[i]);
  return out;
}

void membership::emit(member_event::kind k, const entry& e) {
  if (on_event_) on_event_(member_event{k, snapshot(e)});
}

void membership::trace(trace_event::kind k, trace_event::source via, std::string_view subject,
                       std::string_view from, incarnation inc, const suspicion* s) {
  if (!on_trace_) return;
  trace_event ev;
  ev.k = k;
  ev.via = via;
  ev.subject = subject;
  ev.from = from;
  ev.inc = inc;
  if (s) {
    ev.deadline = s->deadline();
    ev.confirmations = s->confirmations();
  }
  ev.queue_depth = queue_.size();
  on_trace_(ev);
}

void membership::ensure_started(time_point now) {
  if (started_) return;
  started_ = true;
  // Random phases keep nodes started together from probing and gossiping in lockstep.
  auto phase = [&](duration d) {
    const auto n = static_cast<std::uint64_t>(std::max<duration::rep>(1, d.count()));
    return duration(static_cast<duration::rep>(uniform_below(rng_, n)));
  };
  next_probe_ = now + phase(cfg_.probe_interval);
  next_gossip_ = now + phase(cfg_.gossip_interval);
  next_push_pull_ = now + cfg_.push_pull_interval / 2 + phase(cfg_.push_pull_interval);
  next_reap_ = now + cfg_.probe_interval;
}

// ---- sending --------------------------------------------------------------------------------

void membership::queue_message(const std::string& key, const message& m) {
  queue_.push(key, encode(m));
  stats_.broadcast_queue_depth = queue_.size();
}

void membership::send_packet(const address& to, const message& m) {
  auto bytes = encode(m);
  // Piggyback queued broadcasts on every protocol packet, up to the MTU.
  const std::size_t used = compound_header_bytes + compound_part_overhead + bytes.size();
  std::vector<broadcast_queue::shared_bytes> extra;
  if (used < max_packet_bytes) {
    extra = queue_.take(compound_part_overhead, max_packet_bytes - used,
                        std::max<std::size_t>(1, live_count_), max_compound_parts - 1);
  }
  if (!extra.empty()) {
    std::vector<std::span<const std::byte>> parts;
    parts.reserve(extra.size() + 1);
    parts.emplace_back(bytes);
    for (const auto& e : extra) parts.emplace_back(*e);
    bytes = encode_compound(std::span<const std::span<const std::byte>>(parts));
  }
  stats_.packets_out++;
  stats_.packet_bytes_out += bytes.size();
  stats_.broadcast_queue_depth = queue_.size();
  transport_.send_packet(to, std::move(bytes));
}

void membership::send_stream(const address& to, const message& m) {
  auto bytes = encode(m);
  stats_.streams_out++;
  stats_.stream_bytes_out += bytes.size();
  transport_.send_stream(to, std::move(bytes));
}

// ---- entry points ---------------------------------------------------------------------------

void membership::join(const std::vector<address>& seeds, time_point now) {
  ensure_started(now);
  for (const auto& s : seeds) {
    if (s == self().addr) continue;
    stats_.push_pulls_sent++;
    send_stream(s, local_state(true, true));
  }
}

void membership::leave(time_point now) {
  ensure_started(now);
  if (left_) return;
  left_ = true;
  auto& self_e = self_entry();
  set_state(self_e, member_state::left, now);
  probe_.reset();
  queue_message(self_name_, dead_msg{self_e.inc, self_name_, self_name_});
  gossip_round(now);
}

void membership::on_packet(const address& from, std::span<const std::byte> bytes, time_point now) {
  stats_.packets_in++;
  stats_.packet_bytes_in += bytes.size();
  receive(from, bytes, channel::packet, now);
}

void membership::on_stream(const address& from, std::span<const std::byte> bytes, time_point now) {
  stats_.streams_in++;
  stats_.stream_bytes_in += bytes.size();
  receive(from, bytes, channel::stream, now);
}

void membership::receive(const address& from, std::span<const std::byte> bytes, channel ch,
                         time_point now) {
  ensure_started(now);
  if (ch == channel::stream) {
    // A direct message (a swarm piece, say) reaches the user handler as a view into `bytes`,
    // its payload never copied; anything else is decoded below.
    auto direct = decode_direct(bytes);
    if (!direct) {
      count_dropped(direct.error());
      return;
    }
    if (direct.value()) {
      handle_direct(*direct.value());
      return;
    }
  }
  auto decoded = decode(bytes, ch);
  if (!decoded) {
    count_dropped(decoded.error());
    return;
  }
  for (auto& m : decoded.value()) dispatch(std::move(m), from, ch, now);
  stats_.broadcast_queue_depth = queue_.size();
}

void membership::count_dropped(const error& e) {
  const auto& ec = e.code;
  if (ec == errc::too_large) {
    stats_.dropped_too_large++;
  } else if (ec == errc::unknown_type) {
    stats_.dropped_unknown_type++;
  } else if (ec == errc::version_unsupported) {
    stats_.dropped_version++;
  } else {
    stats_.dropped_malformed++;
  }
}

void membership::dispatch(message&& m, const address& from, channel ch, time_point now) {
  std::visit(
      [&](auto&& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, ping_msg>) {
          handle_ping(v, from, ch);
        } else if constexpr (std::is_same_v<T, ping_req_msg>) {
          handle_ping_req(v, from, now);
        } else if constexpr (std::is_same_v<T, ack_msg>) {
          handle_ack(v, now);
        } else if constexpr (std::is_same_v<T, nack_msg>) {
          handle_nack(v);
        } else if constexpr (std::is_same_v<T, suspect_msg>) {
          handle_suspect(v, now, trace_event::source::message);
        } else if constexpr (std::is_same_v<T, alive_msg>) {
          if (on_trace_) {
            trace(trace_event::kind::heard_alive, trace_event::source::message, v.meta.name, {},
                  v.inc);
          }
          handle_alive(v, now);
        } else if constexpr (std::is_same_v<T, dead_msg>) {
          handle_dead(v, now);
        } else if constexpr (std::is_same_v<T, push_pull_msg>) {
          handle_push_pull(v, now);
        } else if constexpr (std::is_same_v<T, user_msg>) {
          handle_user(std::move(v), from);
        } else if constexpr (std::is_same_v<T, digest_msg>) {
          handle_digest(v);
        } else if constexpr (std::is_same_v<T, direct_msg>) {
          handle_direct(direct_view{v.from, v.from_addr, v.user_type, v.payload});
        }
      },
      std::move(m));
}

void membership::on_tick(time_point now) {
  ensure_started(now);

  // Relayed probes whose target stayed silent: tell the requester we tried (Lifeguard nack), so
  // it can tell "target down" from "I am the one with the problem".
  for (auto it = relays_.begin(); it != relays_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    if (it->second.want_nack) send_packet(it->second.origin, nack_msg{it->second.origin_seq});
    it = relays_.erase(it);
  }

  if (probe_ && !probe_->indirect_sent && now >= probe_->timeout_at) probe_timed_out(now);
  if (probe_ && now >= probe_->round_end) finish_probe(now, false);
  if (!left_ && now >= next_probe_) start_probe(now);

  // Suspicions that ran out: declare dead (collect first, handle_dead edits the map).
  std::vector<std::string> expired;
  for (const auto& [name, s] : suspicions_) {
    if (s.deadline() <= now) expired.push_back(name);
  }
  for (const auto& name : expired) {
    const entry* e = lookup(name);
    if (!e) continue;
    stats_.members_declared_dead++;
    if (on_trace_) {
      trace(trace_event::kind::declared_dead, trace_event::source::none, name, {}, e->inc,
            &suspicions_.at(name));
    }
    handle_dead(dead_msg{e->inc, name, self_name_}, now);
  }

  if (now >= next_gossip_) {
    gossip_round(now);
    next_gossip_ = now + cfg_.gossip_interval;
  }
  if (!left_ && cfg_.push_pull_interval.count() > 0 && now >= next_push_pull_) {
    send_digest(now);
    next_push_pull_ = now + cfg_.push_pull_interval;
  }
  if (now >= next_reap_) {
    reap(now);
    next_reap_ = now + cfg_.probe_interval;
  }
  stats_.broadcast_queue_depth = queue_.size();
}

time_point membership::next_deadline() const {
  if (!started_) return time_point::min();
  time_point t = std::min({next_gossip_, next_reap_});
  if (!left_) t = std::min(t, next_probe_);
  if (!left_ && cfg_.push_pull_interval.count() > 0) t = std::min(t, next_push_pull_);
  if (probe_) t = std::min(t, probe_->indirect_sent ? probe_->round_end : probe_->timeout_at);
  for (const auto& [seq, r] : relays_) t = std::min(t, r.deadline);
  for (const auto& [name, s] : suspicions_) t = std::min(t, s.deadline());
  return t;
}

// ---- failure detection ----------------------------------------------------------------------

std::optional<std::string> membership::next_probe_target() {
  // Randomized round robin: every live member once per round, in a fresh random order. The
  // bound covers one full pass over the current order plus one rebuilt order.
  const std::size_t bound = probe_order_.size() + members_.size() + 1;
  bool rebuilt = false;
  for (std::size_t i = 0; i < bound; ++i) {
    if (probe_index_ >= probe_order_.size()) {
      if (rebuilt) return std::nullopt;
      rebuilt = true;
      probe_order_.clear();
      // live_peers_ holds exactly the live members other than self; its order is arbitrary and
      // the shuffle makes it random.
      for (const slot_id id : live_peers_) probe_order_.emplace_back(id, members_.at(id).gen);
      shuffle(probe_order_, rng_);
      probe_index_ = 0;
      if (probe_order_.empty()) return std::nullopt;
    }
    const auto [id, gen] = probe_order_[probe_index_++];
    if (!members_.used(id)) continue;
    const entry& e = members_.at(id);
    if (e.gen == gen && is_live(e.state)) return e.meta->name;
  }
  return std::nullopt;
}

void membership::start_probe(time_point now) {
  const auto interval = awareness_.scale(cfg_.probe_interval);
  next_probe_ = now + interval;
  auto target = next_probe_target();
  if (!target) return;
  const entry& e = *lookup(*target);
  probe p;
  p.seq = next_seq_++;
  p.target = *target;
  p.timeout_at = now + awareness_.scale(cfg_.probe_timeout);
  p.round_end = now + interval;
  probe_ = p;
  stats_.probes_sent++;
  send_packet(e.meta->addr, ping_msg{p.seq, p.target, self_name_, self().addr});
}

void membership::probe_timed_out(time_point) {
  probe_->indirect_sent = true;
  const entry* found = lookup(probe_->target);
  if (!found) return;
  const entry& target = *found;
  // k random helpers among the alive members other than us and the target.
  const auto helpers = pick_alive(cfg_.indirect_checks, probe_->target);
  for (const entry* h : helpers) {
    stats_.indirect_probes_sent++;
    send_packet(h->meta->addr, ping_req_msg{probe_->seq, probe_->target, target.meta->addr,
                                            self_name_, self().addr, true});
  }
  probe_->expected_nacks = helpers.size();
  // The stream channel may work when datagrams do not (a UDP-hostile firewall, a full queue).
  if (cfg_.tcp_fallback_probe) {
    stats_.fallback_probes_sent++;
    send_stream(target.meta->addr, ping_msg{probe_->seq, probe_->target, self_name_, self().addr});
  }
}

void membership::finish_probe(time_point now, bool acked) {
  probe p = std::move(*probe_);
  probe_.reset();
  if (acked) {
    awareness_.apply_delta(-1);
    return;
  }
  stats_.probes_failed++;
  // Lifeguard: each helper that did not even send a nack suggests our own network or process is
  // the problem; with no helpers at all we cannot tell, so count the failure itself.
  const int missed = p.expected_nacks > 0
                         ? static_cast<int>(p.expected_nacks - std::min(p.expected_nacks, p.nacks))
                         : 1;
  awareness_.apply_delta(missed);
  const entry* target = lookup(p.target);
  if (!target || !is_live(target->state)) return;
  handle_suspect(suspect_msg{target->inc, p.target, self_name_}, now, trace_event::source::probe);
}

void membership::handle_ping(const ping_msg& m, const address& from, channel ch) {
  if (!m.target.empty() && m.target != self_name_) {
    stats_.dropped_wrong_target++;
    return;
  }
  if (ch == channel::stream) {
    send_stream(m.source, ack_msg{m.seq});
  } else {
    send_packet(from, ack_msg{m.seq});
  }
}

void membership::handle_ping_req(const ping_req_msg& m, const address& from, time_point now) {
  const std::uint32_t seq = next_seq_++;
  relays_[seq] = relay{from, m.seq, now + cfg_.probe_timeout, m.want_nack};
  send_packet(m.target_addr, ping_msg{seq, m.target, self_name_, self().addr});
}

void membership::handle_ack(const ack_msg& m, time_point now) {
  if (probe_ && probe_->seq == m.seq) {
    finish_probe(now, true);
    return;
  }
  if (auto it = relays_.find(m.seq); it != relays_.end()) {
    const relay r = it->second;
    relays_.erase(it);
    send_packet(r.origin, ack_msg{r.origin_seq});
  }
  // Otherwise a late or duplicate ack: nothing to do.
}

void membership::handle_nack(const nack_msg& m) {
  if (probe_ && probe_->seq == m.seq) {
    stats_.nacks_received++;
    probe_->nacks++;
  }
}

// ---- state changes --------------------------------------------------------------------------

void membership::refute(incarnation seen, time_point) {
  auto& self_e = self_entry();
  self_e.inc = std::max(self_e.inc, seen).next();
  reindex(self_slot_);
  queue_message(self_name_, alive_msg{self_e.inc, *self_e.meta});
  trace(trace_event::kind::refuted, trace_event::source::none, self_name_, {}, self_e.inc);
}

void membership::handle_alive(const alive_msg& m, time_point now) {
  const auto& name = m.meta.name;
  if (name == self_name_) {
    // Someone holds a different or newer picture of us (our previous life, or a stale address):
    // out-announce it. Our own announcement echoed back is ignored.
    const auto& self_e = self_entry();
    if (!left_ && (m.inc > self_e.inc || (m.inc == self_e.inc && m.meta != *self_e.meta))) {
      refute(m.inc, now);
    }
    return;
  }
  if (m.meta.protocol_max < protocol_version_min || m.meta.protocol_min > protocol_version_max) {
    stats_.dropped_incompatible++;
    return;
  }
  const slot_id found = members_.find(name);
  if (found == member_table::none) {
    entry e;
    e.meta = pool_->intern(m.meta);
    e.inc = m.inc;
    e.state = member_state::alive;
    e.state_change = now;
    const slot_id id = members_.insert(std::move(e));
    ++live_count_;
    reindex(id);
    // Probe newcomers within this round: put it at a random not-yet-visited position (append,
    // then swap with that position, so this is O(1) however large the round).
    const std::size_t lo = std::min(probe_index_, probe_order_.size());
    const std::size_t pos = lo + uniform_below(rng_, probe_order_.size() - lo + 1);
    probe_order_.emplace_back(id, members_.at(id).gen);
    std::swap(probe_order_[pos], probe_order_.back());
    queue_message(name, m);
    emit(member_event::kind::join, members_.at(id));
    return;
  }
  entry& e = members_.at(found);
  const bool was_gone = !is_live(e.state);
  // A higher incarnation always wins. A node that rejoins from a new address after being
  // declared dead or having left is accepted even with a lower incarnation (a restart).
  const bool rejoin = was_gone && e.meta->addr != m.meta.addr;
  if (!(m.inc > e.inc || rejoin)) {
    if (on_trace_ && e.state == member_state::suspect) {
      trace(trace_event::kind::stale_alive, trace_event::source::none, name, {}, m.inc);
    }
    return;
  }
  if (on_trace_ && e.state == member_state::suspect) {
    trace(trace_event::kind::cleared, trace_event::source::none, name, {}, m.inc);
  }
  const bool meta_changed = *e.meta != m.meta;
  set_meta(e, m.meta);
  e.inc = m.inc;
  set_state(e, member_state::alive, now);
  reindex(found);
  suspicions_.erase(name);
  queue_message(name, m);
  if (was_gone) {
    emit(member_event::kind::join, e);
  } else if (meta_changed) {
    emit(member_event::kind::update, e);
  }
}

void membership::handle_suspect(const suspect_msg& m, time_point now, trace_event::source via) {
  const slot_id id = members_.find(m.node);
  if (id == member_table::none) return;
  entry& e = members_.at(id);
  if (m.inc < e.inc || !is_live(e.state)) {
    if (on_trace_ && m.node == self_name_ && !left_) {
      trace(trace_event::kind::self_suspect_ignored, via, m.node, m.from, m.inc);
    }
    return;
  }
  if (m.node == self_name_) {
    if (left_) return;
    stats_.suspicions_refuted++;
    // Lifeguard: being suspected hints that we are slow to answer.
    awareness_.apply_delta(1);
    refute(m.inc, now);
    return;
  }
  if (e.state == member_state::suspect) {
    // Only an accusation confirms: a suspect message names the node whose own probe failed. A
    // state exchange relays its sender's view, which the sender most likely took from the same
    // accuser; counting it (memberlist does) cut nearly every suspicion at N=1,000 under 10%
    // loss to the floor, and a node that missed the refutation for those 4.5 s declared a
    // healthy member dead (docs/gossip.md, "Suspicion").
    if (via == trace_event::source::push_pull) return;
    auto s = suspicions_.find(m.node);
    if (s != suspicions_.end() && s->second.confirm(m.from)) {
      queue_message(m.node, m);  // spread the confirmation so others shorten their timers too
      trace(trace_event::kind::confirmed, via, m.node, m.from, m.inc, &s->second);
    }
    return;
  }
  e.inc = m.inc;
  set_state(e, member_state::suspect, now);
  reindex(id);
  const std::size_t n = live_count_;
  const auto min = suspicion_min_timeout(cfg_.suspicion_mult, n, to_ms(cfg_.probe_interval));
  const auto max = min * cfg_.suspicion_max_mult;
  suspicions_.insert_or_assign(
      m.node, suspicion(m.from, suspicion_expected_confirmations(cfg_.suspicion_mult, n), min,
                        std::max(min, max), now));
  if (m.from == self_name_) stats_.suspicions_raised++;
  // A suspicion taken from a state exchange is not gossiped on: as a suspect message from its
  // sender it would reach the accuser's other listeners as a second accuser. The accusation
  // itself spreads from its accuser, and the member hears of it from there (or, after a
  // partition, in its own state exchanges) and refutes.
  if (via != trace_event::source::push_pull) queue_message(m.node, m);
  if (on_trace_)
    trace(trace_event::kind::suspected, via, m.node, m.from, m.inc, &suspicions_.at(m.node));
}

void membership::handle_dead(const dead_msg& m, time_point now) {
  const slot_id id = members_.find(m.node);
  if (id == member_table::none) return;
  entry& e = members_.at(id);
  if (m.inc < e.inc || !is_live(e.state)) return;
  if (m.node == self_name_) {
    if (!left_) refute(m.inc, now);
    return;
  }
  const bool graceful = m.from == m.node;
  if (on_trace_ && e.state == member_state::suspect && m.from != self_name_) {
    trace(trace_event::kind::dead_received, trace_event::source::message, m.node, m.from, m.inc);
  }
  e.inc = m.inc;
  set_state(e, graceful ? member_state::left : member_state::dead, now);
  reindex(id);
  suspicions_.erase(m.node);
  queue_message(m.node, m);
  emit(graceful ? member_event::kind::leave : member_event::kind::fail, e);
}

// ---- dissemination and anti-entropy ---------------------------------------------------------

std::vector<const membership::entry*> membership::recently_dead(time_point now) const {
  // The newest entries of gone_; nobody else is looked at.
  std::vector<const entry*> out;
  for (auto it = gone_.rbegin(); it != gone_.rend() && now - it->first < cfg_.gossip_to_dead;
       ++it) {
    const entry& e = members_.at(it->second);
    if (e.state == member_state::dead) out.push_back(&e);
  }
  return out;
}

void membership::gossip_round(time_point now) {
  if (queue_.empty()) return;
  // Live members, plus recently dead ones so that a wrongly declared node hears it and refutes.
  const std::vector<const entry*> recent_dead = recently_dead(now);
  const std::size_t total = live_peers_.size() + recent_dead.size();
  std::vector<std::size_t> picks;
  for (std::size_t draws = 0; draws < 4 * cfg_.gossip_nodes + 8 &&
                              picks.size() < cfg_.gossip_nodes && picks.size() < total;
       ++draws) {
    const auto i = static_cast<std::size_t>(uniform_below(rng_, total));
    if (std::find(picks.begin(), picks.end(), i) == picks.end()) picks.push_back(i);
  }
  for (auto i : picks) {
    const entry* target =
        i < live_peers_.size() ? &members_.at(live_peers_[i]) : recent_dead[i - live_peers_.size()];
    const auto taken = queue_.take(compound_part_overhead, max_packet_bytes - compound_header_bytes,
                                   std::max<std::size_t>(1, live_count_), max_compound_parts);
    if (taken.empty()) break;
    std::vector<std::byte> bytes;
    if (taken.size() == 1) {
      bytes = *taken.front();
    } else {
      std::vector<std::span<const std::byte>> parts(taken.size());
      for (std::size_t k = 0; k < taken.size(); ++k) parts[k] = *taken[k];
      bytes = encode_compound(std::span<const std::span<const std::byte>>(parts));
    }
    stats_.packets_out++;
    stats_.packet_bytes_out += bytes.size();
    transport_.send_packet(target->meta->addr, std::move(bytes));
  }
  stats_.broadcast_queue_depth = queue_.size();
}

void membership::send_digest(time_point now) {
  // Like gossip, digests also go to members dead for less than gossip_to_dead. After a partition
  // long enough for each side to declare the other dead, gossip queues are empty by the time it
  // heals; a digest to a "dead" member that is in fact alive starts a state exchange in which
  // both sides learn they were declared dead and refute, so the halves merge again.
  const auto recent_dead = recently_dead(now);
  const std::size_t total = live_peers_.size() + recent_dead.size();
  if (total == 0) return;
  const auto i = static_cast<std::size_t>(uniform_below(rng_, total));
  const entry* peer =
      i < live_peers_.size() ? &members_.at(live_peers_[i]) : recent_dead[i - live_peers_.size()];
  stats_.digests_sent++;
  send_stream(peer->meta->addr, digest_msg{self_name_, self().addr, state_digest(),
                                           static_cast<std::uint32_t>(live_count_)});
}

push_pull_msg membership::local_state(bool join, bool reply_wanted) const {
  push_pull_msg m;
  m.join = join;
  m.reply_wanted = reply_wanted;
  m.from = self_name_;
  m.from_addr = self().addr;
  m.members.reserve(members_.size());
  for (slot_id id = 0; id < members_.slot_limit(); ++id) {
    if (members_.used(id)) m.members.push_back(snapshot(members_.at(id)));
  }
  return m;
}

void membership::handle_digest(const digest_msg& m) {
  if (left_ || m.from == self_name_) return;
  if (m.hash == state_digest()) return;  // views agree: the steady state costs one small message
  stats_.push_pulls_sent++;
  send_stream(m.from_addr, local_state(false, true));
}

void membership::handle_push_pull(const push_pull_msg& m, time_point now) {
  if (m.from == self_name_) return;
  for (const auto& mem : m.members) {
    switch (mem.state) {
      case member_state::alive:
        handle_alive(alive_msg{mem.inc, mem.meta}, now);
        break;
      case member_state::suspect:
        // Make sure we know the member first, then take over the suspicion.
        handle_alive(alive_msg{mem.inc, mem.meta}, now);
        handle_suspect(suspect_msg{mem.inc, mem.meta.name, m.from}, now,
                       trace_event::source::push_pull);
        break;
      case member_state::dead:
        // Like memberlist, a remote "dead" only makes us suspect: it may be stale, and the
        // member gets the chance to refute before we believe it.
        handle_suspect(suspect_msg{mem.inc, mem.meta.name, m.from}, now,
                       trace_event::source::push_pull);
        break;
      case member_state::left:
        handle_dead(dead_msg{mem.inc, mem.meta.name, mem.meta.name}, now);
        break;
    }
  }
  if (m.reply_wanted && !left_) {
    stats_.push_pulls_sent++;
    send_stream(m.from_addr, local_state(false, false));
  }
}

// ---- user messages --------------------------------------------------------------------------

result<void> membership::broadcast(std::uint8_t user_type, std::vector<std::byte> payload) {
  if (payload.size() > max_user_payload_bytes) {
    return make_error(errc::too_large,
                      fmt::format("user broadcast type {}: {} bytes, limit {}", user_type,
                                  payload.size(), max_user_payload_bytes));
  }
  const std::uint64_t id = next_user_id_++;
  remember_user(self_name_, id);
  queue_message("", user_msg{self_name_, id, user_type, std::move(payload)});
  return ok();
}

bool membership::remember_user(const std::string& origin, std::uint64_t id) {
  if (!user_seen_.emplace(origin, id).second) return false;
  user_seen_order_.emplace_back(origin, id);
  while (user_seen_order_.size() > cfg_.user_dedupe_window) {
    user_seen_.erase(user_seen_order_.front());
    user_seen_order_.pop_front();
  }
  return true;
}

void membership::handle_user(user_msg&& m, const address& from) {
  if (!remember_user(m.origin, m.id)) return;
  if (on_user_) on_user_(m.user_type, m.payload, from, m.origin);
  // Epidemic: every node that sees a message for the first time passes it on, so delivery does
  // not hinge on the origin's few retransmissions.
  queue_message("", m);
}

result<void> membership::send_user(const address& to, std::uint8_t user_type,
                                   std::vector<std::byte> payload) {
  if (payload.size() > max_direct_payload_bytes) {
    return make_error(errc::too_large,
                      fmt::format("direct message type {} to {}: {} bytes, limit {}", user_type,
                                  to.to_string(), payload.size(), max_direct_payload_bytes));
  }
  stats_.directs_sent++;
  send_stream(to, direct_msg{self_name_, self().addr, user_type, std::move(payload)});
  return ok();
}

result<void> membership::send_user(const address& to, std::uint8_t user_type,
                                   frame_buffer payload) {
  if (payload.size() > max_direct_payload_bytes) {
    return make_error(errc::too_large,
                      fmt::format("direct message type {} to {}: {} bytes, limit {}", user_type,
                                  to.to_string(), payload.size(), max_direct_payload_bytes));
  }
  stats_.directs_sent++;
  prepend_direct(payload, self_name_, self().addr, user_type);
  stats_.streams_out++;
  stats_.stream_bytes_out += payload.size();
  transport_.send_stream(to, std::move(payload));
  return ok();
}

void membership::handle_direct(const direct_view& m) {
  stats_.directs_received++;
  if (on_user_) on_user_(m.user_type, m.payload, m.from_addr, m.from);
}

result<void> membership::update_tags(std::map<std::string, std::string> tags, time_point now) {
  ensure_started(now);
  auto& self_e = self_entry();
  node_meta next = *self_e.meta;
  next.tags = std::move(tags);
  MESH_CHECK(validate_meta(next));
  set_meta(self_e, next);
  self_e.inc = self_e.inc.next();
  reindex(self_slot_);
  queue_message(self_name_, alive_msg{self_e.inc, *self_e.meta});
  return ok();
}

void membership::reap(time_point now) {
  // gone_ is ordered by the time members died or left: only its due prefix is looked at.
  const duration first_due = std::min(cfg_.dead_reap_after, cfg_.left_reap_after);
  for (auto it = gone_.begin(); it != gone_.end() && now - it->first >= first_due;) {
    const slot_id id = it->second;
    ++it;  // the erase below removes the element just passed
    entry& e = members_.at(id);
    const duration after =
        e.state == member_state::dead ? cfg_.dead_reap_after : cfg_.left_reap_after;
    if (now - e.state_change < after) continue;
    gone_.erase({e.state_change, id});
    suspicions_.erase(e.meta->name);
    members_.erase(id);
  }
}

}  // namespace meshdeploy::gossip

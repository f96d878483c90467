// The SWIM + Lifeguard membership state machine (sans-IO). It sends through an
// injected transport, receives through on_packet/on_stream, and advances on
// on_tick(now); it never reads a clock, sleeps or owns a thread. Protocol and
// parameters: docs/gossip.md; bytes on the wire: docs/wire-format.md.
#pragma once

#include "gossip/awareness.h"
#include "gossip/broadcast_queue.h"
#include "gossip/config.h"
#include "gossip/member_table.h"
#include "gossip/messages.h"
#include "gossip/meta_pool.h"
#include "gossip/metrics.h"
#include "gossip/suspicion.h"
#include "gossip/trace.h"
#include "gossip/transport.h"
#include "gossip/types.h"
#include "storage/result.h"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace meshdeploy::gossip {

// Threading: not thread-safe. Every member function, and the transport and the handlers it calls,
// run on the one executor that owns this object (the node's network thread, or the simulator).
// Handlers are called synchronously from inside the entry points and must not call back into
// this membership.
class membership {
 public:
  using event_handler = std::function<void(const member_event&)>;
  // `from` is the address the bytes came from: for a broadcast the member that relayed it, for a
  // direct message (send_user) the sender's advertised address. `origin` is the name of the node
  // that created the message (the broadcaster, or the direct sender).
  using user_handler =
      std::function<void(std::uint8_t user_type, std::span<const std::byte> payload,
                         const address& from, const std::string& origin)>;

  // Creates the state for `self` (incarnation 0, alive) and queues its alive announcement. `t`
  // is borrowed and must outlive this object. `seed` drives every random choice (probe order,
  // indirect probe helpers, gossip targets), so a run replays exactly by seed. `pool` interns
  // member metadata; memberships on one thread may share one to store each distinct metadata
  // once (the simulator does); null means a pool of its own.
  // REQUIRES: validate_meta(self) succeeds (gossip/codec.h).
  membership(const config& cfg, node_meta self, transport& t, std::uint64_t seed,
             std::shared_ptr<meta_pool> pool = nullptr);

  membership(const membership&) = delete;
  membership& operator=(const membership&) = delete;

  // Sends our full state over the stream channel to every seed; each answers with its own.
  // Retrying with backoff when no seed answers is the driver's job (members().size() == 1).
  void join(const std::vector<address>& seeds, time_point now);

  // Graceful leave: marks self left, broadcasts a dead-from-self message and gossips it at once.
  // Afterwards the node stops probing and refuting but keeps gossiping until
  // broadcasts_pending() is false; then the driver may stop calling it. Idempotent.
  void leave(time_point now);

  // Bytes from the packet (UDP) or stream (TCP) channel, after decryption. Input that does not
  // decode is counted in stats() by reason and changes nothing else.
  void on_packet(const address& from, std::span<const std::byte> bytes, time_point now);
  void on_stream(const address& from, std::span<const std::byte> bytes, time_point now);

  // Runs whatever is due at `now`: probe rounds and their timeouts, suspicion expiry, gossip,
  // anti-entropy, relayed-probe nacks and reaping. Calling it early is harmless.
  void on_tick(time_point now);

  // The earliest time on_tick has work. Before the first entry point ran this is
  // time_point::min() (tick at once).
  [[nodiscard]] time_point next_deadline() const;

  // A snapshot of every known member including self, ordered by name.
  [[nodiscard]] std::vector<member> members() const;
  // The member named `name`, if known.
  [[nodiscard]] std::optional<member> find(const std::string& name) const;
  // Members in state alive or suspect, self included.
  [[nodiscard]] std::size_t live_count() const { return live_count_; }

  void set_event_handler(event_handler h) { on_event_ = std::move(h); }
  void set_user_handler(user_handler h) { on_user_ = std::move(h); }
  // Diagnosis only (gossip/trace.h): called synchronously at each step of suspicion handling,
  // with views that are valid only during the call. No handler (the default) costs one branch.
  void set_trace_handler(trace_handler h) { on_trace_ = std::move(h); }

  // Floods an opaque payload to the user handler of every other member (not delivered locally).
  // Delivery is best effort with high probability, at most once per node.
  // Errors: too_large if payload.size() > max_user_payload_bytes.
  result<void> broadcast(std::uint8_t user_type, std::vector<std::byte> payload);

  // Sends an opaque payload to the one node listening at `to` over the stream channel (reliable
  // framing, but fire and forget: no acknowledgement, lost if `to` is down). It reaches that
  // node's user handler with from = our advertised address and origin = our name. `to` need not
  // be a known member; picking a live one is the caller's job.
  // Errors: too_large if payload.size() > max_direct_payload_bytes.
  result<void> send_user(const address& to, std::uint8_t user_type, std::vector<std::byte> payload);
  // The same for a payload in a frame_buffer: the direct message is built around it in place and
  // handed to transport::send_stream(to, frame_buffer) (no copy of the payload on the way).
  result<void> send_user(const address& to, std::uint8_t user_type, frame_buffer payload);

  // Replaces our tags and re-announces ourselves with a higher incarnation.
  // Errors: too_large when the new metadata would not fit a packet (state unchanged).
  result<void> update_tags(std::map<std::string, std::string> tags, time_point now);

  // True while broadcasts are queued (e.g. the leave announcement has not gone out yet).
  [[nodiscard]] bool broadcasts_pending() const { return !queue_.empty(); }

  [[nodiscard]] const metrics& stats() const { return stats_; }
  [[nodiscard]] int health_score() const { return awareness_.score(); }
  [[nodiscard]] const node_meta& self() const;
  [[nodiscard]] incarnation self_incarnation() const;

  // The anti-entropy digest of our view: the sum (mod 2^64) over every live member of FNV-1a of
  // (name, 0, incarnation as 8 little-endian bytes). Equal views give equal digests; maintained
  // as members change, so this is O(1).
  [[nodiscard]] std::uint64_t state_digest() const { return digest_; }

 private:
  // Index bookkeeping in an entry (reindex): digest_part is its term in digest_, live_pos its
  // position in live_peers_, in_gone whether (state_change, slot) is in gone_.
  using entry = member_table::entry;
  using slot_id = member_table::slot_id;
  struct probe {
    std::uint32_t seq = 0;
    std::string target;
    time_point timeout_at{};
    time_point round_end{};
    bool indirect_sent = false;
    std::size_t expected_nacks = 0;
    std::size_t nacks = 0;
  };
  struct relay {
    address origin;
    std::uint32_t origin_seq = 0;
    time_point deadline{};
    bool want_nack = false;
  };

  void ensure_started(time_point now);
  // Decodes one packet or stream message (counting drops) and dispatches it.
  void receive(const address& from, std::span<const std::byte> bytes, channel ch, time_point now);
  void dispatch(message&& m, const address& from, channel ch, time_point now);

  // Failure detection.
  void start_probe(time_point now);
  void probe_timed_out(time_point now);
  void finish_probe(time_point now, bool acked);
  std::optional<std::string> next_probe_target();
  void handle_ping(const ping_msg& m, const address& from, channel ch);
  void handle_ping_req(const ping_req_msg& m, const address& from, time_point now);
  void handle_ack(const ack_msg& m, time_point now);
  void handle_nack(const nack_msg& m);

  // State changes (SWIM's alive/suspect/dead rules with incarnations).
  void handle_alive(const alive_msg& m, time_point now);
  // `via` says how the suspicion arrived (trace_event::source): one relayed by a state exchange
  // (push_pull) is no confirmation and is not gossiped on.
  void handle_suspect(const suspect_msg& m, time_point now, trace_event::source via);
  void handle_dead(const dead_msg& m, time_point now);
  void refute(incarnation seen, time_point now);
  void set_state(entry& e, member_state s, time_point now);
  void emit(member_event::kind k, const entry& e);
  void trace(trace_event::kind k, trace_event::source via, std::string_view subject,
             std::string_view from, incarnation inc, const suspicion* s = nullptr);

  // Dissemination and anti-entropy.
  void queue_message(const std::string& key, const message& m);
  void send_packet(const address& to, const message& m);
  void send_stream(const address& to, const message& m);
  void gossip_round(time_point now);
  void send_digest(time_point now);
  // Members dead (not left) for less than gossip_to_dead, newest first.
  std::vector<const entry*> recently_dead(time_point now) const;
  push_pull_msg local_state(bool join, bool reply_wanted) const;
  void handle_push_pull(const push_pull_msg& m, time_point now);
  void handle_digest(const digest_msg& m);
  void handle_user(user_msg&& m, const address& from);
  void handle_direct(const direct_view& m);
  // Counts a message that did not decode.
  void count_dropped(const error& e);
  bool remember_user(const std::string& origin, std::uint64_t id);
  void reap(time_point now);
  // Brings the indexes (live_peers_, gone_, digest_) up to date with e's state and incarnation.
  // Called after every change to either; idempotent, O(log N).
  void reindex(slot_id id);
  // k distinct random alive members other than self and `exclude`, without scanning everyone.
  std::vector<const entry*> pick_alive(std::size_t k, const std::string& exclude);

  entry& self_entry() { return members_.at(self_slot_); }
  const entry& self_entry() const { return members_.at(self_slot_); }
  // The entry of a live or gone member by name, or null.
  entry* lookup(std::string_view name);
  // Records `meta` for a member: keeps the pooled copy it already has when equal.
  void set_meta(entry& e, const node_meta& meta);
  static member snapshot(const entry& e) { return member{*e.meta, e.inc, e.state}; }

  config cfg_;
  std::string self_name_;
  transport& transport_;
  std::mt19937_64 rng_;
  awareness awareness_;
  broadcast_queue queue_;

  std::shared_ptr<meta_pool> pool_;
  member_table members_;
  slot_id self_slot_ = member_table::none;
  std::size_t live_count_ = 0;
  // Indexes that keep every periodic task off the full member list (docs/gossip.md "Cost"):
  // alive and suspect members except self, in no particular order (gossip and digest targets,
  // indirect probe helpers); dead and left members by the time they became so (reaping, gossip
  // to the recently dead); and the digest, maintained as members change.
  std::vector<slot_id> live_peers_;
  std::set<std::pair<time_point, slot_id>> gone_;
  std::uint64_t digest_ = 0;
  std::map<std::string, suspicion> suspicions_;

  // This round's probe order as (slot, generation): a slot freed and reused since the round
  // began is recognised by its generation and skipped.
  std::vector<std::pair<slot_id, std::uint32_t>> probe_order_;
  std::size_t probe_index_ = 0;
  std::optional<probe> probe_;
  std::map<std::uint32_t, relay> relays_;
  std::uint32_t next_seq_ = 0;

  bool started_ = false;
  bool left_ = false;
  time_point next_probe_{};
  time_point next_gossip_{};
  time_point next_push_pull_{};
  time_point next_reap_{};

  std::uint64_t next_user_id_ = 0;
  std::set<std::pair<std::string, std::uint64_t>> user_seen_;
  std::deque<std::pair<std::string, std::uint64_t>> user_seen_order_;

  event_handler on_event_;
  user_handler on_user_;
  trace_handler on_trace_;
  metrics stats_;
};

}  // namespace meshdeploy::gossip

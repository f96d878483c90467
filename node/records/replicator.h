// Record replication: epidemic push of new records plus periodic anti-entropy (DESIGN §2, §4;
// docs/replication.md). Sans-IO: no sockets, threads or clocks. The node's driver feeds it
// messages (on_message) and ticks (on_tick at next_deadline()); it sends through the injected
// replicator_env. Every random choice comes from the seed, so a run replays exactly.
//
// Dissemination: a record newly stored (published locally, or received in a push and new here)
// is pushed at once to `fanout` random peers, everything stored while handling one call batched
// into one message; receivers forward what is new to them. Anti-entropy: every sync_interval the
// node sends its root digest to one random peer; when the roots differ the peer answers with its
// bucket digests, the initiator sends its entries of the differing buckets, the peer sends back
// the records the initiator lacks (or holds older) and asks for those it lacks itself. So a
// steady state costs one small message per node per interval, and a node restarted with a wiped
// data dir gets everything in its first exchange. Messages are split to stay within
// max_stream_bytes.
//
// Verification is injected (replicator_env::verify). Records failing it with
// errc::unknown_writer wait in a bounded pending set (oldest evicted) and are retried whenever a
// grant or host record is stored; other failures are dropped and counted by reason.
//
// Threading: not thread-safe; one thread (the node's network thread) makes every call. The
// store it writes to may be read concurrently from other threads (store.h).
#pragma once

#include "node/records/record.h"
#include "node/records/store.h"
#include "node/records/sync_messages.h"
#include "storage/result.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace meshdeploy::records {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using duration = clock::duration;

struct replicator_env {
  // Live peer names, self excluded.
  std::function<std::vector<std::string>()> peers;
  // Sends one message on the reliable framed stream to `peer` (delivery may fail silently:
  // anti-entropy repairs).
  std::function<void(const std::string& peer, std::vector<std::byte> bytes)> send;
  // Signature, schema and authority check of a decoded record (node/security/verifier.h).
  std::function<result<void>(const record&)> verify;
};

struct replicator_config {
  std::size_t fanout = 3;
  // When true, push to max(fanout, ceil(ln(N + 1)) + 2) peers for N live peers, so the push
  // alone reaches nearly everyone (bench/RESULTS.md: at N=1,000 with 10% loss, p99 0.31 s
  // instead of 4.3 s with 3) for about 3x the push bytes. The node turns it on.
  bool adaptive_fanout = false;
  duration sync_interval = std::chrono::seconds(1);
  std::size_t max_stream_bytes = 8u << 20;  // per message; clamped to max_sync_message_bytes
  std::size_t max_pending = 10'000;
  // How many encodings of records recently stored or found stale are remembered, so a copy of
  // one arriving again (push gossip delivers each record about `fanout` times) is dropped by
  // its hash before the store read, decode and comparison. 0 turns it off.
  std::size_t recent_capacity = 4096;
  // When true, records received from peers wait in the outbox until flush_forwarding() instead
  // of going out after each message: the caller flushes once per burst of messages (the node:
  // a handler posted behind the messages already queued), so one push per peer carries the
  // whole burst, and no peer that sent one of the burst's records gets the push. At 32 nodes
  // nearly every record otherwise travelled alone, ~900 frames per node per deployment
  // (bench/RESULTS.md). Local publications still go out at once.
  bool batch_forwarding = false;
};

struct replicator_stats {
  std::uint64_t received = 0;      // records received from peers (before verification)
  std::uint64_t stored = 0;        // newly stored or replacing (from peers and published)
  std::uint64_t stale = 0;         // already held (or older/equal, or tombstoned)
  std::uint64_t stale_recent = 0;  // of those, known by the hash of their encoding alone
  // Dropped records by reason: "malformed", "bad_signature", "permission_denied", "schema",
  // "conflict", "too_large", "pending_evicted", "io", ... and "message" for undecodable messages.
  std::map<std::string, std::uint64_t> rejected_by_reason;
  std::size_t pending = 0;  // waiting for their writer's grant / host key
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t messages_in = 0;
  std::uint64_t messages_out = 0;
  std::uint64_t syncs_started = 0;      // digests sent
  std::uint64_t syncs_equal = 0;        // digests received that matched ours
  std::uint64_t records_sent_sync = 0;  // records sent in anti-entropy pushes
  std::uint64_t tombstones_applied = 0;
};

class replicator {
 public:
  // `st` is borrowed and must outlive the replicator. `env`'s functions must be set.
  replicator(store& st, replicator_env env, replicator_config config, std::uint64_t seed);

  // A local submission (API): verifies r, stores it and pushes it to fanout peers at once.
  // Returns true when r was stored (new or replacing), false when it was stale. Errors: the
  // verify error as is (unknown_writer included: nothing is kept pending for local input), the
  // store's errors (conflict, io).
  // `durable` false writes it buffered (for records whose loss in a crash is harmless because
  // a newer one follows, e.g. intermediate progress).
  result<bool> publish(const record& r, time_point now, bool durable = true);

  // Handles one message from `from`. Never throws; hostile bytes are counted and dropped.
  void on_message(const std::string& from, std::span<const std::byte> bytes, time_point now);

  // With batch_forwarding: true while received records wait to be forwarded, and the call
  // that forwards them (to fanout peers that did not send any of them).
  [[nodiscard]] bool forwarding_pending() const { return !outbox_.empty(); }
  void flush_forwarding();

  // Runs anti-entropy when due. Call at (or after) next_deadline().
  void on_tick(time_point now);
  // When on_tick wants to run next; time_point::min() before the first tick.
  [[nodiscard]] time_point next_deadline() const;

  // Called once for every record newly stored or replacing an older one (not for stale ones),
  // on the calling thread, after it is durable.
  void set_on_stored(std::function<void(const record&)> callback);

  [[nodiscard]] const replicator_stats& stats() const { return stats_; }

  replicator(const replicator&) = delete;
  replicator& operator=(const replicator&) = delete;

 private:
  struct pending_item {
    record rec;
    bool forward = false;
  };
  enum class accept { stored, stale, pending, rejected };

  accept receive(const record& r, bool forward);
  void retry_pending();
  void add_pending(const record& r, bool forward);
  void count_rejected(const std::string& reason);
  void flush_outbox(const std::set<std::string>& exclude);
  void send(const std::string& peer, const sync_message& m);
  std::vector<std::string> pick_peers(std::size_t k, const std::set<std::string>& exclude);
  // Sends records/tombstones in push messages of at most max_stream_bytes each.
  void send_push(const std::string& peer, bool sync,
                 const std::vector<std::vector<std::byte>>& records,
                 const std::vector<tombstone_note>& tombstones);

  void on_push(const std::string& from, push_msg m);
  void on_digest(const std::string& from, const digest_msg& m);
  void on_buckets(const std::string& from, const buckets_msg& m);
  void on_entries(const std::string& from, const entries_msg& m);
  void on_want(const std::string& from, const want_msg& m);

  store& store_;
  replicator_env env_;
  replicator_config config_;
  std::mt19937_64 rng_;
  std::function<void(const record&)> on_stored_;
  replicator_stats stats_;

  bool ticked_ = false;
  time_point next_sync_{};

  // Encoded records stored during the current call, to forward (dissemination).
  std::vector<std::vector<std::byte>> outbox_;
  std::set<std::string> outbox_from_;  // with batch_forwarding: the peers those came from
  bool retry_due_ = false;             // a grant or host record was stored: retry pending
  bool in_retry_ = false;
  // Pending records in arrival order (seq -> item), and their hashes for deduplication.
  std::map<std::uint64_t, pending_item> pending_;
  std::map<record_hash, std::uint64_t> pending_index_;
  std::uint64_t pending_seq_ = 0;
  // Hashes of encodings recently stored or found stale (at most recent_capacity, oldest out
  // first): a push carrying one of them again changes nothing.
  std::set<record_hash> recent_;
  std::deque<record_hash> recent_order_;
  void remember(const record_hash& h);
};

}  // namespace meshdeploy::records

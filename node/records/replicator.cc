#include "node/records/replicator.h"

#include "node/records/errc.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace meshdeploy::records {
namespace {

std::string reason_of(const error& e) {
  if (e.code.category() != records_category()) return "other";
  switch (static_cast<errc>(e.code.value())) {
    case errc::malformed:
      return "malformed";
    case errc::too_large:
      return "too_large";
    case errc::version_unsupported:
      return "version_unsupported";
    case errc::bad_signature:
      return "bad_signature";
    case errc::unknown_writer:
      return "unknown_writer";
    case errc::permission_denied:
      return "permission_denied";
    case errc::schema:
      return "schema";
    case errc::stale:
      return "stale";
    case errc::conflict:
      return "conflict";
    case errc::io:
      return "io";
    default:
      return "other";
  }
}

bool is_unknown_writer(const error& e) { return e.code == make_error_code(errc::unknown_writer); }

}  // namespace

replicator::replicator(store& st, replicator_env env, replicator_config config, std::uint64_t seed)
    : store_(st), env_(std::move(env)), config_(config), rng_(seed) {
  config_.max_stream_bytes =
      std::clamp<std::size_t>(config_.max_stream_bytes, 4096, max_sync_message_bytes);
  if (config_.sync_interval <= duration::zero()) config_.sync_interval = std::chrono::seconds(1);
}

void replicator::set_on_stored(std::function<void(const record&)> callback) {
  on_stored_ = std::move(callback);
}

void replicator::count_rejected(const std::string& reason) { ++stats_.rejected_by_reason[reason]; }

result<bool> replicator::publish(const record& r, time_point now, bool durable) {
  (void)now;
  MESH_CHECK(env_.verify(r));
  MESH_TRY(auto outcome, durable ? store_.put(r) : store_.put(r, storage::durability::buffered));
  if (outcome == put_outcome::stale) {
    ++stats_.stale;
    return false;
  }
  ++stats_.stored;
  if (on_stored_) on_stored_(r);
  outbox_.push_back(encode(r));
  if (r.type == record_type::grant || r.type == record_type::host) retry_due_ = true;
  retry_pending();
  outbox_from_.clear();  // anything batched goes out with it
  flush_outbox({});
  return true;
}

replicator::accept replicator::receive(const record& r, bool forward) {
  // Cheap replay check before the (expensive) verification: a record we hold, or one that the
  // stored record or a tombstone already beats, changes nothing.
  if (r.type != record_type::grant) {
    auto held = store_.get(r.type, r.key);
    if (held && held.value() && (*held.value() == r || supersedes(*held.value(), r))) {
      ++stats_.stale;
      return accept::stale;
    }
  } else {
    auto held = store_.get_by_id(sync_id(r));
    if (held && held.value() && (*held.value() == r || supersedes(*held.value(), r))) {
      ++stats_.stale;
      return accept::stale;
    }
  }
  if (auto v = env_.verify(r); !v) {
    if (is_unknown_writer(v.error())) {
      add_pending(r, forward);
      return accept::pending;
    }
    count_rejected(reason_of(v.error()));
    return accept::rejected;
  }
  auto outcome = store_.put(r, storage::durability::buffered);
  if (!outcome) {
    count_rejected(reason_of(outcome.error()));
    return accept::rejected;
  }
  if (outcome.value() == put_outcome::stale) {
    ++stats_.stale;
    return accept::stale;
  }
  ++stats_.stored;
  if (on_stored_) on_stored_(r);
  if (forward) outbox_.push_back(encode(r));
  if (r.type == record_type::grant || r.type == record_type::host) retry_due_ = true;
  return accept::stored;
}

void replicator::remember(const record_hash& h) {
  if (config_.recent_capacity == 0 || !recent_.insert(h).second) return;
  recent_order_.push_back(h);
  while (recent_order_.size() > config_.recent_capacity) {
    recent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
}

void replicator::add_pending(const record& r, bool forward) {
  const record_hash h = hash_of(r);
  if (pending_index_.contains(h)) return;
  while (pending_.size() >= config_.max_pending && !pending_.empty()) {
    auto oldest = pending_.begin();
    pending_index_.erase(hash_of(oldest->second.rec));
    pending_.erase(oldest);
    count_rejected("pending_evicted");
  }
  if (config_.max_pending == 0) {
    count_rejected("pending_evicted");
    return;
  }
  const std::uint64_t seq = pending_seq_++;
  pending_.emplace(seq, pending_item{r, forward});
  pending_index_.emplace(h, seq);
  stats_.pending = pending_.size();
}

void replicator::retry_pending() {
  if (in_retry_) return;
  in_retry_ = true;
  // Each round retries everything pending once; a round that stores a grant or host record may
  // unlock more, so go again. Every round that continues removed at least one record, so this
  // ends after at most pending_.size() + 1 rounds.
  while (retry_due_ && !pending_.empty()) {
    retry_due_ = false;
    auto items = std::move(pending_);
    pending_.clear();
    pending_index_.clear();
    for (auto& [seq, item] : items) {
      // receive() re-adds it (same arrival order through the new seq) if still unknown.
      (void)seq;
      (void)receive(item.rec, item.forward);
    }
  }
  retry_due_ = false;
  stats_.pending = pending_.size();
  in_retry_ = false;
}

std::vector<std::string> replicator::pick_peers(std::size_t k,
                                                const std::set<std::string>& exclude) {
  std::vector<std::string> peers = env_.peers();
  if (!exclude.empty()) std::erase_if(peers, [&](const auto& p) { return exclude.contains(p); });
  // Partial Fisher-Yates with our own rng (std::shuffle's use of the engine is unspecified).
  const std::size_t n = std::min(k, peers.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t j = i + static_cast<std::size_t>(rng_() % (peers.size() - i));
    std::swap(peers[i], peers[j]);
  }
  peers.resize(n);
  return peers;
}

void replicator::send(const std::string& peer, const sync_message& m) {
  auto bytes = encode_sync_message(m);
  stats_.bytes_out += bytes.size();
  ++stats_.messages_out;
  env_.send(peer, std::move(bytes));
}

void replicator::send_push(const std::string& peer, bool sync,
                           const std::vector<std::vector<std::byte>>& records,
                           const std::vector<tombstone_note>& tombstones) {
  push_msg m;
  m.sync = sync;
  std::size_t size = sync_message_overhead;
  auto flush = [&] {
    if (m.records.empty() && m.tombstones.empty()) return;
    send(peer, m);
    m.records.clear();
    m.tombstones.clear();
    size = sync_message_overhead;
  };
  for (const auto& r : records) {
    const std::size_t add = encoded_size_bound_record(r.size());
    if (size + add > config_.max_stream_bytes) flush();
    m.records.push_back(r);
    size += add;
    if (sync) ++stats_.records_sent_sync;
  }
  for (const auto& t : tombstones) {
    const std::size_t add = encoded_size_bound(t);
    if (size + add > config_.max_stream_bytes) flush();
    m.tombstones.push_back(t);
    size += add;
  }
  flush();
}

void replicator::flush_forwarding() {
  auto exclude = std::move(outbox_from_);
  outbox_from_.clear();
  flush_outbox(exclude);
}

void replicator::flush_outbox(const std::set<std::string>& exclude) {
  if (outbox_.empty()) return;
  auto records = std::move(outbox_);
  outbox_.clear();
  std::size_t k = config_.fanout;
  if (config_.adaptive_fanout) {
    const double n = static_cast<double>(env_.peers().size());
    k = std::max(k, static_cast<std::size_t>(std::ceil(std::log(n + 1))) + 2);
  }
  for (const auto& peer : pick_peers(k, exclude)) {
    send_push(peer, false, records, {});
  }
}

void replicator::on_message(const std::string& from, std::span<const std::byte> bytes,
                            time_point now) {
  (void)now;
  stats_.bytes_in += bytes.size();
  ++stats_.messages_in;
  auto m = decode_sync_message(bytes);
  if (!m) {
    count_rejected("message");
    return;
  }
  std::visit(
      [&](auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, push_msg>) {
          on_push(from, std::move(msg));
        } else if constexpr (std::is_same_v<T, digest_msg>) {
          on_digest(from, msg);
        } else if constexpr (std::is_same_v<T, buckets_msg>) {
          on_buckets(from, msg);
        } else if constexpr (std::is_same_v<T, entries_msg>) {
          on_entries(from, msg);
        } else {
          on_want(from, msg);
        }
      },
      m.value());
  retry_pending();
  if (!config_.batch_forwarding) {
    flush_outbox({from});
  } else if (!outbox_.empty()) {
    outbox_from_.insert(from);
  }
}

void replicator::on_push(const std::string& from, push_msg m) {
  (void)from;
  for (const auto& bytes : m.records) {
    ++stats_.received;
    const record_hash h = hash_of_encoded(bytes);
    if (recent_.contains(h)) {
      ++stats_.stale;
      ++stats_.stale_recent;
      continue;
    }
    auto r = decode(bytes);
    if (!r) {
      count_rejected(reason_of(r.error()));
      continue;
    }
    const accept a = receive(r.value(), !m.sync);
    if (a == accept::stored || a == accept::stale) remember(h);
  }
  for (const auto& t : m.tombstones) {
    auto id = parse_sync_id(t.id);
    if (!id || !(id->type & tombstone_flag)) {
      count_rejected("malformed");
      continue;
    }
    const auto type = static_cast<record_type>(id->type & ~tombstone_flag);
    auto applied = store_.apply_tombstone(type, id->key, t.version);
    if (!applied) {
      count_rejected(reason_of(applied.error()));
    } else if (applied.value()) {
      ++stats_.tombstones_applied;
    }
  }
}

void replicator::on_digest(const std::string& from, const digest_msg& m) {
  if (m.root == store_.root_digest() && m.count == store_.index_size()) {
    ++stats_.syncs_equal;
    return;
  }
  buckets_msg reply;
  reply.root = store_.root_digest();
  const auto digests = store_.bucket_digests();
  reply.digests.assign(digests.begin(), digests.end());
  send(from, reply);
}

void replicator::on_buckets(const std::string& from, const buckets_msg& m) {
  const auto mine = store_.bucket_digests();
  std::vector<std::uint16_t> differing;
  for (std::size_t b = 0; b < sync_buckets && b < m.digests.size(); ++b) {
    if (mine[b] != m.digests[b]) differing.push_back(static_cast<std::uint16_t>(b));
  }
  // Split on bucket boundaries (each message lists complete buckets), within max_stream_bytes.
  entries_msg out;
  std::size_t size = sync_message_overhead;
  for (std::uint16_t b : differing) {
    const auto entries = store_.bucket_entries({b});
    std::size_t bucket_size = 3;
    for (const auto& [id, e] : entries) {
      bucket_size += encoded_size_bound(entry_summary{id, e.version, e.digest});
    }
    if (!out.buckets.empty() && size + bucket_size > config_.max_stream_bytes) {
      send(from, out);
      out = entries_msg{};
      size = sync_message_overhead;
    }
    out.buckets.push_back(b);
    for (const auto& [id, e] : entries)
      out.entries.push_back(entry_summary{id, e.version, e.digest});
    size += bucket_size;
  }
  if (!out.buckets.empty()) send(from, out);
}

void replicator::on_entries(const std::string& from, const entries_msg& m) {
  // Theirs, by id; ours of the same buckets.
  std::map<std::string, const entry_summary*> theirs;
  for (const auto& e : m.entries) {
    if (!m.buckets.empty() &&
        std::find(m.buckets.begin(), m.buckets.end(), bucket_of(e.id)) == m.buckets.end()) {
      continue;  // not in a listed bucket: ignore
    }
    theirs.emplace(e.id, &e);
  }
  const auto ours = store_.bucket_entries(m.buckets);

  std::vector<std::vector<std::byte>> give;
  std::vector<tombstone_note> give_tombs;
  want_msg want;
  std::size_t want_size = sync_message_overhead;
  auto add_want = [&](const std::string& id) {
    const std::size_t add = id.size() + 5;
    if (want_size + add > config_.max_stream_bytes) {
      send(from, want);
      want = want_msg{};
      want_size = sync_message_overhead;
    }
    want.ids.push_back(id);
    want_size += add;
  };
  auto give_record = [&](const std::string& id) {
    auto r = store_.get_by_id(id);
    if (r && r.value()) give.push_back(encode(*r.value()));
  };

  for (const auto& [id, e] : ours) {
    auto it = theirs.find(id);
    const bool is_tomb = !id.empty() && (static_cast<std::uint8_t>(id[0]) & tombstone_flag);
    if (it != theirs.end() && it->second->digest == e.digest) continue;
    if (it != theirs.end() && it->second->version > e.version) continue;  // theirs wins: below
    if (is_tomb) {
      give_tombs.push_back(tombstone_note{id, e.version});
    } else {
      give_record(id);
    }
  }
  for (const auto& [id, te] : theirs) {
    auto it = ours.find(id);
    if (it != ours.end() && it->second.digest == te->digest) continue;
    if (it != ours.end() && it->second.version > te->version) continue;  // ours wins: sent above
    auto parsed = parse_sync_id(id);
    if (!parsed) continue;
    if (parsed->type & tombstone_flag) {
      // A tombstone carries no record: apply it (only if we hold nothing under that key).
      const auto type = static_cast<record_type>(parsed->type & ~tombstone_flag);
      auto applied = store_.apply_tombstone(type, parsed->key, te->version);
      if (applied && applied.value()) ++stats_.tombstones_applied;
      continue;
    }
    // Skip records we pruned (a tombstone at or above their version): we would refuse them.
    auto tomb = ours.find(tombstone_id(static_cast<record_type>(parsed->type), parsed->key));
    if (tomb != ours.end() && tomb->second.version >= te->version) continue;
    add_want(id);
  }
  if (!give.empty() || !give_tombs.empty()) send_push(from, true, give, give_tombs);
  if (!want.ids.empty()) send(from, want);
}

void replicator::on_want(const std::string& from, const want_msg& m) {
  std::vector<std::vector<std::byte>> give;
  for (const auto& id : m.ids) {
    auto r = store_.get_by_id(id);
    if (r && r.value()) give.push_back(encode(*r.value()));
  }
  if (!give.empty()) send_push(from, true, give, {});
}

void replicator::on_tick(time_point now) {
  if (!ticked_) {
    ticked_ = true;
    // Spread the first sync over one interval so that nodes started together do not all sync
    // in the same instant.
    const auto offset =
        static_cast<duration::rep>(rng_() % static_cast<std::uint64_t>(std::max<duration::rep>(
                                                1, config_.sync_interval.count())));
    next_sync_ = now + duration(offset);
    return;
  }
  if (now < next_sync_) return;
  next_sync_ = now + config_.sync_interval;
  auto peer = pick_peers(1, {});
  if (peer.empty()) return;
  ++stats_.syncs_started;
  send(peer.front(), digest_msg{store_.root_digest(), store_.index_size()});
  retry_pending();
  if (!config_.batch_forwarding) flush_outbox({});
}

time_point replicator::next_deadline() const { return ticked_ ? next_sync_ : time_point::min(); }

}  // namespace meshdeploy::records

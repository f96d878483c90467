// The node's set of verified records, kept in RocksDB (DESIGN §4, §9; docs/replication.md).
//
// Layout: one column family per record type ("rec_grant", "rec_application", ...) holding the
// winning record of each key (key: storage::key().str(record key), value: encode(record));
// "rec_grant_history" keeping every version of every grant (key: str(operator hex).u64(version));
// "rec_tombstone" remembering records removed by prune() (key: u8 type + str(record key), value:
// the highest pruned version, 8 bytes big-endian) so anti-entropy does not bring them back.
//
// The store also keeps an in-memory sync index (one entry per stored record, per grant version
// and per tombstone) with bucketed XOR digests, which the replicator compares with its peers'.
// It is rebuilt from the database when the store opens.
//
// Thread safety: every method may be called from any thread. Writers (put, prune,
// apply_tombstone) are serialised by an internal mutex; readers (get, scan, count, grant_history,
// host_key) read RocksDB directly and never block on writers; the sync index has its own mutex.
// A reader racing a put sees the record either before or after it, never half of it.
#pragma once

#include "node/records/record.h"
#include "node/records/trust.h"
#include "storage/db.h"
#include "storage/result.h"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::records {

enum class put_outcome {
  stored,    // no record was stored under (type, key): now it is
  stale,     // the stored record (or a tombstone) is newer or the same: nothing changed (replay)
  replaced,  // r superseded the stored record, which it replaced
};
std::string_view to_string(put_outcome o);

struct prune_options {
  std::int64_t max_age_ms = 30LL * 24 * 3600 * 1000;  // older than this (by intent time_ms) ...
  std::size_t keep_per_group = 50;                    // ... and beyond the newest this many
};

struct prune_stats {
  std::size_t deployments = 0;  // intents removed
  std::size_t records = 0;      // records removed, intents included
};

// The sync index: what a node holds, summarised for anti-entropy. An entry's id is
// [u8 type][storage::key().str(key)] and, for grants, .u64(version) (so every grant version
// syncs); tombstones use the type byte | 0x80.
inline constexpr std::size_t sync_buckets = 256;
inline constexpr std::uint8_t tombstone_flag = 0x80;

struct sync_entry {
  std::uint64_t version = 0;
  std::uint64_t digest = 0;  // 64 bits of BLAKE2b(id, version, record hash); 0 never occurs
};

// Which bucket an entry id falls into (a hash of the id, so buckets fill evenly).
std::size_t bucket_of(std::string_view id);
// The id of a record in the sync index.
std::string sync_id(const record& r);
// The id of a tombstone for (t, key).
std::string tombstone_id(record_type t, std::string_view key);
// Splits an id back into (type byte, record key). nullopt when it does not parse.
struct parsed_id {
  std::uint8_t type = 0;  // with tombstone_flag for tombstones
  std::string key;
};
std::optional<parsed_id> parse_sync_id(std::string_view id);

class store final : public trust_source {
 public:
  // Every column family the store uses; open the db with (at least) these.
  static std::vector<std::string> column_families();

  // Loads the sync index from `db`. `db` is borrowed and must outlive the store; it must have
  // been opened with column_families(). `durability` applies to every write; the node uses
  // synced (the default), simulators and benchmarks may use buffered (survives a process crash,
  // not an OS crash). Errors: storage errors (io) naming the column family.
  static result<std::unique_ptr<store>> open(
      storage::db& db, storage::durability durability = storage::durability::synced);

  // Keeps `r` if it supersedes what is stored under (r.type, r.key) and no tombstone covers its
  // version. REQUIRES: r is verified (signature, grant, schema). Every grant version is also
  // kept in the history, even one older than the current grant. All writes of one put are one
  // atomic batch (synced by default). Errors: conflict when a host record binds a name already
  // bound to a different key (the first verified binding wins; logged); io on storage failure.
  result<put_outcome> put(const record& r);
  // The same with this write's durability chosen by the caller: the replicator writes records
  // it received from peers buffered (a crash may lose the newest of them; anti-entropy fetches
  // them again, and every view only waits longer for what it lacks) and this node's own
  // records with the store's durability.
  result<put_outcome> put(const record& r, storage::durability durability);

  // The record stored under (t, key), or nullopt.
  result<std::optional<record>> get(record_type t, std::string_view key) const;
  // Every record of type t whose key starts with key_prefix (plain byte prefix of the record
  // key), in ascending key order.
  result<std::vector<record>> scan(record_type t, std::string_view key_prefix = {}) const;
  // Number of records of type t.
  result<std::size_t> count(record_type t) const;

  // trust_source. Storage failures read as "nothing known" (logged).
  [[nodiscard]] std::vector<record> grant_history(const public_key& op) const override;
  [[nodiscard]] std::optional<public_key> host_key(std::string_view name) const override;
  [[nodiscard]] std::optional<bool> group_auto_rollback(std::string_view app,
                                                        std::string_view group) const override;

  // Retention: removes intents older than options.max_age_ms (now_ms - intent.time_ms) that are
  // not among the newest options.keep_per_group intents of their app/group, with the stop,
  // exclude and progress records of those deployments and the approvals naming them as child.
  // Each removed record leaves a tombstone (its type, key and version). One atomic batch.
  result<prune_stats> prune(std::int64_t now_ms, const prune_options& options);
  // The highest pruned version of (t, key), if a tombstone exists.
  result<std::optional<std::uint64_t>> tombstone(record_type t, std::string_view key) const;
  // Records a tombstone learnt from a peer, only when nothing is stored under (t, key) (a peer
  // may tell us what it pruned, never make us delete what we hold) and t is a prunable type.
  // Returns true if it was recorded.
  result<bool> apply_tombstone(record_type t, std::string_view key, std::uint64_t version);

  // Sync index. Digests are XORs of entry digests (0 for empty).
  [[nodiscard]] std::uint64_t root_digest() const;
  [[nodiscard]] std::size_t index_size() const;
  [[nodiscard]] std::array<std::uint64_t, sync_buckets> bucket_digests() const;
  // Entries (id -> entry) of the listed buckets.
  [[nodiscard]] std::map<std::string, sync_entry> bucket_entries(
      const std::vector<std::uint16_t>& buckets) const;
  // The record behind an index id (a current record or a grant version); nullopt for ids that
  // are absent, tombstones or malformed.
  result<std::optional<record>> get_by_id(std::string_view id) const;

  store(const store&) = delete;
  store& operator=(const store&) = delete;
  ~store() override;

 private:
  store(storage::db& db, storage::durability durability);
  result<void> load_index();
  void index_set(const std::string& id, sync_entry e);
  void index_erase(const std::string& id);

  storage::db& db_;
  const storage::durability durability_;
  std::mutex write_mu_;  // serialises read-modify-write sequences (put, prune, apply_tombstone)
  mutable std::mutex index_mu_;
  // GUARDED_BY(index_mu_): entries by bucket, each bucket's XOR, the XOR of all, the count.
  std::array<std::map<std::string, sync_entry>, sync_buckets> index_;
  std::array<std::uint64_t, sync_buckets> buckets_{};
  std::uint64_t root_ = 0;
  std::size_t index_size_ = 0;
};

}  // namespace meshdeploy::records

// The node's hash-chained audit log (DESIGN §4, §8; docs/audit.md): one entry
// per accepted operator record, each entry carrying the hash of the one before,
// so that modifying, deleting or reordering a stored entry breaks the chain at
// that point and verify() names the first broken link.
//
// Storage: column family `audit_log::column_family` ("audit") of storage::db.
//   key   = storage::key().u64(seq)            (8 bytes, big-endian; seq = 1, 2, ...)
//   value = canonical(entry) || hash            (hash: 32 bytes)
//   hash  = BLAKE2b-256("meshdeploy/audit/v1\0" || canonical(entry))
// canonical(entry), all integers big-endian, strings as u32 length + bytes:
//   u8 format=1, u64 seq, i64 time_ms, u8 type, str key, u64 version,
//   32 bytes writer, str writer_name, str via, str accepted_by,
//   32 bytes record_hash, 32 bytes prev
// The first entry has prev = 32 zero bytes. The format is documented in docs/audit.md.
//
// What the chain proves: an entry changed, removed or moved inside the stored log
// is detected. A rewrite of the whole chain from some entry on (recomputing every
// later hash) is not, unless the head hash was recorded elsewhere (verify() returns
// it for that purpose); removing the newest entries is detected only by the
// process that appended them (it remembers its head).
#pragma once

#include "node/records/record.h"
#include "storage/db.h"
#include "storage/result.h"

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::security {

using audit_hash = std::array<std::uint8_t, 32>;

inline constexpr std::uint8_t audit_format = 1;

// One accepted record, as this node saw it.
struct audit_entry {
  std::uint64_t seq = 0;     // 1, 2, ... without gaps
  std::int64_t time_ms = 0;  // when this node accepted the record (ms since the Unix epoch)
  records::record_type type = records::record_type::application;
  std::string key;            // the record's key (the resource)
  std::uint64_t version = 0;  // the record's version
  records::public_key writer{};
  std::string writer_name;             // the operator's name when known, else ""
  std::string via;                     // node the writer submitted through (record.via)
  std::string accepted_by;             // the node that appended this entry
  records::record_hash record_hash{};  // records::hash_of(record)
  audit_hash prev{};                   // hash of the previous entry; zeros for seq 1
  audit_hash hash{};                   // hash of this entry (see the top of this file)

  friend bool operator==(const audit_entry&, const audit_entry&) = default;
};

// canonical(entry) as described at the top of this file (without the hash).
std::vector<std::uint8_t> canonical_bytes(const audit_entry& e);
// BLAKE2b-256 over the domain string and canonical_bytes(e). Ignores e.hash.
audit_hash compute_hash(const audit_entry& e);
// The stored value: canonical_bytes(e) followed by e.hash (as stored, not recomputed).
std::string encode_entry(const audit_entry& e);
// Parses a stored value (untrusted bytes: never throws, never reads out of bounds).
// Does not check the hash. Errors: records::errc::malformed naming the field.
result<audit_entry> decode_entry(std::string_view value);

// The JSON shape of an entry (docs/audit.md, docs/api.md):
// {"seq","time" (RFC 3339),"timeMs","type","key","version","writer" (hex),"writerName",
//  "via","acceptedBy","recordHash","prev","hash"}
nlohmann::json to_json(const audit_entry& e);

// Why a chain does not verify, in the order they are checked per entry.
enum class audit_break {
  none = 0,
  malformed,      // the key or the value does not decode
  seq_gap,        // an entry is missing (the next stored seq is not the expected one)
  seq_mismatch,   // the entry under key N says it is entry M (moved/reordered)
  hash_mismatch,  // the stored hash is not the hash of the entry's contents (modified)
  prev_mismatch,  // the entry's prev is not the previous entry's hash (reordered/replaced)
  truncated,      // entries this process appended are gone from the end of the log
};
std::string_view to_string(audit_break b);  // "hash mismatch", "gap in seq", ...

struct audit_verification {
  bool ok = true;
  std::uint64_t entries_checked = 0;   // entries read, up to and including the broken one
  std::uint64_t first_broken_seq = 0;  // 0 when ok; for a gap, the missing seq
  audit_break broken = audit_break::none;
  std::string reason;          // human message naming the seq and what differs
  std::uint64_t head_seq = 0;  // last entry that verified
  audit_hash head_hash{};      // its hash (zeros for an empty log)
};
// {"ok","entriesChecked","headSeq","headHash", and when broken: "firstBrokenSeq","break","reason"}
nlohmann::json to_json(const audit_verification& v);

struct audit_page {
  std::vector<audit_entry> entries;  // ascending seq
  bool truncated = false;            // more entries matched than `limit`; the oldest were left out
  std::uint64_t unreadable = 0;      // stored entries skipped because they do not decode
};

// Thread safety: every method may be called from any thread; append() is
// serialised by a mutex, list() and verify() read a consistent snapshot
// without blocking appends. Not copyable or movable.
class audit_log {
 public:
  // The column family the log lives in; list it in storage::open_options.
  static const char* column_family;

  // Opens the log stored in `db` (which must have column_family open and must
  // outlive the log) and resumes after its last entry (seq and prev from it; an
  // entry that does not decode is resumed from its key and its stored hash
  // bytes, and verify() reports it). Errors: records::errc::io when the column
  // family is missing or the scan fails.
  static result<std::unique_ptr<audit_log>> open(storage::db& db);

  // Appends an entry for `r`, accepted by this node (`accepted_by_node`) at
  // `now_ms`; `writer_name` is the operator's name if known, else "". The write
  // is synced (survives an OS crash) before returning. On error nothing is
  // appended and the next append reuses the seq. Errors: records::errc::io.
  result<audit_entry> append(const records::record& r, std::string_view accepted_by_node,
                             std::int64_t now_ms, std::string_view writer_name = {});

  // Entries with time_ms >= since_ms, ascending by seq; when more than `limit`
  // match, the newest `limit` (page.truncated). limit 0 means none. Entries that
  // do not decode are counted in page.unreadable and skipped. Errors: io.
  result<audit_page> list(std::int64_t since_ms, std::size_t limit) const;

  // Walks the whole chain from seq 1 and reports the first broken link. A broken
  // chain is a successful result with ok = false; errors are for I/O only.
  result<audit_verification> verify() const;

  // The last appended (or resumed) seq, 0 for an empty log, and its hash.
  std::uint64_t last_seq() const;
  audit_hash last_hash() const;

  audit_log(const audit_log&) = delete;
  audit_log& operator=(const audit_log&) = delete;

 private:
  struct passkey {
    explicit passkey() = default;
  };

 public:
  audit_log(passkey, storage::db& db, std::uint64_t last_seq, audit_hash last_hash);

 private:
  storage::db& db_;
  mutable std::mutex mu_;
  std::uint64_t last_seq_;  // GUARDED_BY(mu_)
  audit_hash last_hash_;    // GUARDED_BY(mu_)
};

}  // namespace meshdeploy::security

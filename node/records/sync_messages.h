// Wire messages of record replication (node/records/replicator.h), carried over the mesh's
// reliable, sealed, framed streams. Described in docs/replication.md "Wire format".
//
// Every message is one msgpack array: [protocol_version:u8, type:u8, body fields...].
//   push    = 1: [1, 1, sync:bool, [record:bin...], [[tombstone_id:bin, version:u64]...]]
//   digest  = 2: [1, 2, root:u64, count:u64]
//   buckets = 3: [1, 3, root:u64, [digest:u64 x 256]]
//   entries = 4: [1, 4, [bucket:u16...], [[id:bin, version:u64, digest:u64]...]]
//   want    = 5: [1, 5, [id:bin...]]
// Types are numbered explicitly and only appended to; a receiver drops messages whose version is
// outside [sync_protocol_min, sync_protocol_max] or whose type it does not know.
// decode_sync_message() is the boundary for untrusted bytes: it enforces the limits below, never
// throws and never crashes (fuzzed by tests/fuzz/sync_messages_fuzz.cc). It does not decode the
// records inside a push (records::decode does, one by one).
#pragma once

#include "node/records/record.h"
#include "storage/result.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace meshdeploy::records {

inline constexpr std::uint8_t sync_protocol_min = 1;
inline constexpr std::uint8_t sync_protocol_max = 1;
inline constexpr std::uint8_t sync_protocol_version = 1;  // what this build sends

enum class sync_msg_type : std::uint8_t {
  push = 1,
  digest = 2,
  buckets = 3,
  entries = 4,
  want = 5,
};

// Limits enforced by decode_sync_message.
inline constexpr std::size_t max_sync_message_bytes = 9u << 20;  // 9 MiB (8 MiB streams + slack)
inline constexpr std::size_t max_sync_items = 1u << 20;          // records/entries/ids per message
inline constexpr std::size_t max_sync_id_bytes = 1 + 2 * max_key_bytes + 2 + 8;
inline constexpr std::size_t sync_bucket_count = 256;

struct tombstone_note {
  std::string id;  // store.h tombstone_id()
  std::uint64_t version = 0;
  friend bool operator==(const tombstone_note&, const tombstone_note&) = default;
};

// Records (encoded, record.h) and tombstones. sync: part of an anti-entropy exchange (the
// receiver does not forward them); false: epidemic dissemination (forwarded when new).
struct push_msg {
  bool sync = false;
  std::vector<std::vector<std::byte>> records;
  std::vector<tombstone_note> tombstones;
  friend bool operator==(const push_msg&, const push_msg&) = default;
};

// The initiator's root digest; the responder answers with buckets when its own differs.
struct digest_msg {
  std::uint64_t root = 0;
  std::uint64_t count = 0;
  friend bool operator==(const digest_msg&, const digest_msg&) = default;
};

// The responder's bucket digests (exactly sync_bucket_count of them).
struct buckets_msg {
  std::uint64_t root = 0;
  std::vector<std::uint64_t> digests;
  friend bool operator==(const buckets_msg&, const buckets_msg&) = default;
};

struct entry_summary {
  std::string id;
  std::uint64_t version = 0;
  std::uint64_t digest = 0;
  friend bool operator==(const entry_summary&, const entry_summary&) = default;
};

// The initiator's entries of the listed buckets (those whose digests differ). A bucket's entries
// are never split across messages, so the receiver may treat the list as complete per bucket.
struct entries_msg {
  std::vector<std::uint16_t> buckets;  // each < sync_bucket_count
  std::vector<entry_summary> entries;
  friend bool operator==(const entries_msg&, const entries_msg&) = default;
};

// Ids the sender lacks (or holds older); the receiver answers with a push (sync = true).
struct want_msg {
  std::vector<std::string> ids;
  friend bool operator==(const want_msg&, const want_msg&) = default;
};

using sync_message = std::variant<push_msg, digest_msg, buckets_msg, entries_msg, want_msg>;

// Encodes a message (never fails; callers split so that the result stays within the limits).
std::vector<std::byte> encode_sync_message(const sync_message& m);

// Decodes untrusted bytes. Errors: too_large (message, list or id over its limit),
// version_unsupported, malformed (names the field). Rejects trailing bytes.
result<sync_message> decode_sync_message(std::span<const std::byte> bytes);

// Bytes an entry / a record / a tombstone adds to an encoded message, at most (for splitting).
std::size_t encoded_size_bound(const entry_summary& e);
std::size_t encoded_size_bound_record(std::size_t record_bytes);
std::size_t encoded_size_bound(const tombstone_note& t);
// Fixed overhead of a message, at most.
inline constexpr std::size_t sync_message_overhead = 32;

}  // namespace meshdeploy::records

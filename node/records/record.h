// The signed record envelope: the unit of everything the mesh agrees on
// (DESIGN §4, docs/records.md). A record has exactly one writer, identified by
// an Ed25519 public key, and is immutable once signed; mutable things
// (applications, grants, host progress) are new records with a higher version
// under the same (type, key).
//
// Wire/storage form: msgpack array
//   [format=1, type:u8, key:str, version:u64, writer:bin32, time_ms:i64, via:str, payload:bin,
//   sig:bin64]
// The signature covers signing_bytes(): the domain string "meshdeploy/record/v1\0"
// followed by the same array without the signature (first 8 elements).
// decode() is the boundary for untrusted bytes: it enforces the limits below,
// never throws and never crashes (fuzzed by tests/fuzz/record_fuzz.cc). It does
// not verify the signature or the payload: see node/security/verifier.h.
#pragma once

#include "storage/result.h"

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::records {

// Record types, numbered append-only (the number is on the wire and in storage keys).
enum class record_type : std::uint8_t {
  grant = 1,        // admin -> operator permissions             key: operator key hex
  application = 2,  // operator                                  key: APP
  group = 3,        // operator                                  key: APP/GROUP
  config = 4,       // operator, deployment configuration        key: NAME
  revision = 5,     // operator, immutable                       key: APP/REVISION_ID
  intent = 6,       // operator, immutable deployment intent     key: DEPLOYMENT_ID
  approval = 7,     // target host, immutable                    key: APP/GROUP/PARENT/HOST
  progress = 8,     // host, newest version wins                 key: DEPLOYMENT_ID/HOST
  stop = 9,         // operator, immutable                       key: DEPLOYMENT_ID
  exclude = 10,     // operator, immutable                       key: DEPLOYMENT_ID/HOST
  host = 11,        // a node's own name -> key binding, immutable key: HOST
};
inline constexpr std::uint8_t max_record_type = 11;

// "grant", "application", ... (for messages, metrics labels and docs).
std::string_view to_string(record_type t);
// True for types whose newest version replaces older ones (grant, application, group, config,
// progress); the others are immutable (version must be 1; should two different records ever
// share a key, supersedes() picks the same one on every node).
bool is_versioned(record_type t);

inline constexpr std::size_t public_key_bytes = 32;
inline constexpr std::size_t signature_bytes = 64;
using public_key = std::array<std::uint8_t, public_key_bytes>;  // Ed25519
using signature = std::array<std::uint8_t, signature_bytes>;

inline constexpr std::uint8_t record_format = 1;
// The longest valid key is an approval's: four 128-byte names and three '/' (515 bytes).
inline constexpr std::size_t max_key_bytes = 640;
inline constexpr std::size_t max_via_bytes = 128;
inline constexpr std::size_t max_payload_bytes = 1u
                                                 << 20;  // 1 MiB (an intent of 10,000 hosts fits)
inline constexpr std::size_t max_record_bytes = max_payload_bytes + 2048;

struct record {
  record_type type = record_type::application;
  std::string key;            // unique within the type; see the table above
  std::uint64_t version = 1;  // >= 1; immutable types use exactly 1
  public_key writer{};        // who signed
  std::int64_t time_ms = 0;   // writer's wall clock at signing, ms since the Unix epoch
  std::string via;            // node name the writer submitted through ("" if written by a node)
  std::vector<std::byte> payload;  // msgpack of the type's payload (node/records/payloads.h)
  signature sig{};

  friend bool operator==(const record&, const record&) = default;
};

// The bytes the writer signs (domain-separated, without the signature).
std::vector<std::byte> signing_bytes(const record& r);

// Encodes a record. Never fails; callers keep within the limits (decode enforces them).
std::vector<std::byte> encode(const record& r);

// Decodes untrusted bytes. Errors: too_large, version_unsupported, malformed (names the field).
// Rejects unknown types, version 0, empty key, trailing bytes.
result<record> decode(std::span<const std::byte> bytes);

// A record's identity for deduplication and anti-entropy: BLAKE2b-256 of encode(r).
using record_hash = std::array<std::uint8_t, 32>;
record_hash hash_of(const record& r);
record_hash hash_of_encoded(std::span<const std::byte> encoded);

// Lower-case hex of bytes (keys, hashes), and back. from_hex fails on odd length or non-hex.
std::string to_hex(std::span<const std::uint8_t> bytes);
result<std::vector<std::uint8_t>> from_hex(std::string_view hex);
result<public_key> public_key_from_hex(std::string_view hex);

// Which of two records under the same (type, key) wins: higher version, then (for equal
// versions: two writers that changed the same definition at once through different nodes, each
// signing the stored version + 1, or a misbehaving writer) the lower hash. Deterministic, so every
// node keeps the same one whatever the arrival order (commutative, associative, idempotent).
// REQUIRES: a.type == b.type && a.key == b.key.
bool supersedes(const record& a, const record& b);

}  // namespace meshdeploy::records

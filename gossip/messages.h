// Gossip wire messages and their limits. The byte layout is described in
// docs/wire-format.md; gossip/codec.h turns these structs into bytes and back.
//
// Compatibility rules: msg_type values are only appended, never renumbered or
// reused; a body is a msgpack array of positional fields, and a newer version
// may append fields (decoders ignore extra trailing fields), so adding a field
// does not need a new protocol version. Changing or removing one does.
#pragma once

#include "gossip/transport.h"
#include "gossip/types.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace meshdeploy::gossip {

// Wire protocol versions this build speaks (carried in the envelope's low nibble).
inline constexpr std::uint8_t protocol_version_min = 1;
inline constexpr std::uint8_t protocol_version_max = 1;
// High nibble of the envelope's first byte: rejects foreign or shifted bytes early.
inline constexpr std::uint8_t envelope_magic = 0xB0;

// Limits enforced by the decoder (and respected by the encoder's callers).
inline constexpr std::size_t max_packet_bytes = 1400;      // a safe UDP payload under a 1500 MTU
inline constexpr std::size_t max_stream_bytes = 8u << 20;  // one push/pull state message
inline constexpr std::size_t max_name_bytes = 128;         // node names, user origins
inline constexpr std::size_t max_host_bytes = 255;         // DNS name limit
inline constexpr std::size_t max_tags = 32;
inline constexpr std::size_t max_tag_key_bytes = 64;
inline constexpr std::size_t max_tag_value_bytes = 256;
inline constexpr std::size_t max_compound_parts = 64;
inline constexpr std::size_t max_state_members = 65536;      // members in one push/pull
inline constexpr std::size_t max_user_payload_bytes = 1024;  // so a user message fits a packet
// A direct message's payload: a stream message minus room for the direct envelope (names,
// address, msgpack headers; under 512 bytes) and the driver's sealing (docs/wire-format.md).
inline constexpr std::size_t max_direct_payload_bytes = max_stream_bytes - 1024;

// Which transport channel bytes came from: packets are limited to max_packet_bytes and may not
// carry push_pull; streams are limited to max_stream_bytes and carry exactly one message.
enum class channel : std::uint8_t { packet, stream };

// Message type numbers: explicit and append-only.
enum class msg_type : std::uint8_t {
  ping = 0,
  ping_req = 1,
  ack = 2,
  nack = 3,
  suspect = 4,
  alive = 5,
  dead = 6,  // from == node means a graceful leave
  push_pull = 7,
  compound = 8,
  user = 9,
  digest = 10,
  direct = 11,  // stream only
};

// Direct probe. `target` lets a node that now lives at a reused address ignore probes meant for
// its predecessor. Answered with ack{seq} to the sender (packet) or to `source` (stream).
struct ping_msg {
  std::uint32_t seq = 0;
  std::string target;
  std::string source_name;
  address source;
  friend bool operator==(const ping_msg&, const ping_msg&) = default;
};

// Asks the receiver to ping `target` and relay the ack (seq is the requester's); with
// want_nack the receiver answers nack{seq} if the target stays silent.
struct ping_req_msg {
  std::uint32_t seq = 0;
  std::string target;
  address target_addr;
  std::string source_name;
  address source;
  bool want_nack = true;
  friend bool operator==(const ping_req_msg&, const ping_req_msg&) = default;
};

struct ack_msg {
  std::uint32_t seq = 0;
  friend bool operator==(const ack_msg&, const ack_msg&) = default;
};

struct nack_msg {
  std::uint32_t seq = 0;
  friend bool operator==(const nack_msg&, const nack_msg&) = default;
};

// `from` suspects `node` at incarnation `inc`.
struct suspect_msg {
  incarnation inc;
  std::string node;
  std::string from;
  friend bool operator==(const suspect_msg&, const suspect_msg&) = default;
};

// The node described by `meta` is alive at `inc` (also carries metadata updates).
struct alive_msg {
  incarnation inc;
  node_meta meta;
  friend bool operator==(const alive_msg&, const alive_msg&) = default;
};

// `from` declares `node` dead at `inc`; from == node is a graceful leave.
struct dead_msg {
  incarnation inc;
  std::string node;
  std::string from;
  friend bool operator==(const dead_msg&, const dead_msg&) = default;
};

// Full state exchange (stream only). The receiver merges `members`; if reply_wanted it answers
// with its own state (reply_wanted = false) to `from_addr`.
struct push_pull_msg {
  bool join = false;
  bool reply_wanted = false;
  std::string from;
  address from_addr;
  std::vector<member> members;
  friend bool operator==(const push_pull_msg&, const push_pull_msg&) = default;
};

// Opaque payload for the layers above, flooded to all members; (origin, id) identifies it.
struct user_msg {
  std::string origin;
  std::uint64_t id = 0;
  std::uint8_t user_type = 0;
  std::vector<std::byte> payload;
  friend bool operator==(const user_msg&, const user_msg&) = default;
};

// Cheap anti-entropy: a hash of the sender's live view (gossip/membership.h state_digest). A
// receiver whose own digest differs answers with push_pull{reply_wanted = true}.
struct digest_msg {
  std::string from;
  address from_addr;
  std::uint64_t hash = 0;
  std::uint32_t count = 0;
  friend bool operator==(const digest_msg&, const digest_msg&) = default;
};

// Opaque payload for the layers above, sent to one member over the stream channel (never
// flooded, never on the packet channel). `from` and `from_addr` are the sender's name and
// advertised address.
struct direct_msg {
  std::string from;
  address from_addr;
  std::uint8_t user_type = 0;
  std::vector<std::byte> payload;
  friend bool operator==(const direct_msg&, const direct_msg&) = default;
};

// A direct message decoded without copying its payload (gossip/codec.h decode_direct).
struct direct_view {
  std::string from;
  address from_addr;
  std::uint8_t user_type = 0;
  std::span<const std::byte> payload;  // views the decoded bytes: valid while they are
};

// One decoded message. Compound packets decode into several of these.
using message = std::variant<ping_msg, ping_req_msg, ack_msg, nack_msg, suspect_msg, alive_msg,
                             dead_msg, push_pull_msg, user_msg, digest_msg, direct_msg>;

}  // namespace meshdeploy::gossip

// Wire messages of the swarm (node/swarm/swarm.h; docs/swarm.md "Protocol"): nodes exchange a
// bundle's pieces over the mesh's sealed direct messages (gossip user type 3,
// mesh::user_type_swarm), so only cluster members (holders of the keyring) can ask or answer.
//
// Every message is one msgpack array: [protocol_version:u8, type:u8, fields...].
//   hello            = 1: [2, 1, app, id, bits:bin, reply:bool]  I fetch or hold `id`; my pieces
//   have             = 2: [2, 2, id, index:u32]                  I now hold piece `index`
//   request          = 3: [2, 3, id, index:u32, only_you:bool]   send me piece `index` (only_you:
//                                                                no other peer I know serves it)
//   piece            = 4: [2, 4, id, index:u32, data:bin]        piece `index`
//   none             = 5: [2, 5, id]                             I neither hold nor fetch `id`
//   busy             = 6: [2, 6, id, index:u32]                  not now (index = busy_hello:
//                                                                my peer table is full)
//   manifest_request = 7: [2, 7, app, id]                        send me the manifest of `id`
//   manifest         = 8: [2, 8, id, bytes:bin]                  the encoded manifest
// `id` is the bundle id (64 lowercase hex digits: BLAKE2b-256 of the bytes); bits is a bitfield,
// piece i = bit (7 - i % 8) of byte i / 8. Version 1 was the single-source fetch that preceded
// the swarm; a receiver drops any version but 2 and any type it does not know.
// decode_swarm_message() is the boundary for untrusted bytes: it enforces the limits below,
// never throws and never crashes (fuzzed by tests/fuzz/swarm_wire_fuzz.cc).
#pragma once

#include "gossip/frame_buffer.h"
#include "node/swarm/manifest.h"
#include "storage/result.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace meshdeploy::swarm {

inline constexpr std::uint8_t swarm_protocol_version = 2;
inline constexpr std::size_t max_app_bytes = 128;
inline constexpr std::size_t bundle_id_chars = 64;
inline constexpr std::uint32_t busy_hello = 0xffffffffu;
// The largest encoded manifest: max_pieces hashes and the fixed fields.
inline constexpr std::size_t max_manifest_bytes = max_pieces * 32 + 64;
// The largest message: a piece of max_piece_size or a manifest, plus the fixed fields.
inline constexpr std::size_t max_swarm_wire_bytes = max_piece_size + 256;

struct hello_msg {
  std::string app, id;
  std::vector<std::byte> bits;  // empty before the sender has the manifest
  bool reply = false;           // an answer to a hello (not answered again)
  friend bool operator==(const hello_msg&, const hello_msg&) = default;
};
struct have_msg {
  std::string id;
  std::uint32_t index = 0;
  friend bool operator==(const have_msg&, const have_msg&) = default;
};
struct request_msg {
  std::string id;
  std::uint32_t index = 0;
  bool only_you = false;  // the asker knows no other peer serving it (the origin then serves it)
  friend bool operator==(const request_msg&, const request_msg&) = default;
};
struct piece_msg {
  std::string id;
  std::uint32_t index = 0;
  std::vector<std::byte> data;
  friend bool operator==(const piece_msg&, const piece_msg&) = default;
};
struct none_msg {
  std::string id;
  friend bool operator==(const none_msg&, const none_msg&) = default;
};
struct busy_msg {
  std::string id;
  std::uint32_t index = 0;
  friend bool operator==(const busy_msg&, const busy_msg&) = default;
};
struct manifest_request_msg {
  std::string app, id;
  friend bool operator==(const manifest_request_msg&, const manifest_request_msg&) = default;
};
struct manifest_msg {
  std::string id;
  std::vector<std::byte> bytes;
  friend bool operator==(const manifest_msg&, const manifest_msg&) = default;
};

// A piece decoded without copying its data (decode_swarm_view).
struct piece_view {
  std::string id;
  std::uint32_t index = 0;
  std::span<const std::byte> data;  // views the decoded bytes: valid while they are
};

using swarm_message = std::variant<hello_msg, have_msg, request_msg, piece_msg, none_msg, busy_msg,
                                   manifest_request_msg, manifest_msg>;
// The same messages as decoded on the receive path, a piece as a view.
using swarm_message_view = std::variant<hello_msg, have_msg, request_msg, piece_view, none_msg,
                                        busy_msg, manifest_request_msg, manifest_msg>;

std::vector<std::byte> encode_swarm_message(const swarm_message& m);
// Turns `data`'s contents (a piece's bytes) into encode_swarm_message(piece_msg{id, index,
// contents}) by writing the message's fields in front of them (no copy of the piece).
// REQUIRES: id is a bundle id; 1 <= data.size() <= max_piece_size.
void prepend_piece_header(gossip::frame_buffer& data, const std::string& id, std::uint32_t index);

// Errors: invalid_argument naming what is wrong (not msgpack, version, unknown type, field
// count or type, an id that is not 64 lowercase hex digits, an app name over max_app_bytes,
// bits over max_pieces / 8 bytes, empty or oversized data, trailing bytes).
result<swarm_message> decode_swarm_message(std::span<const std::byte> bytes);
// The same checks, but a piece's data is not copied: piece_view::data views `bytes`.
result<swarm_message_view> decode_swarm_view(std::span<const std::byte> bytes);

// Bitfield helpers (the layout above). bits_get is false past the end.
std::vector<std::byte> make_bits(const std::vector<bool>& held);
bool bits_get(std::span<const std::byte> bits, std::size_t index);

}  // namespace meshdeploy::swarm

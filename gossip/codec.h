// Encodes and decodes gossip messages (gossip/messages.h). Byte layout:
// docs/wire-format.md. The decoder is the boundary for untrusted bytes: it
// enforces every limit in messages.h, never throws and never crashes on any
// input (fuzzed by tests/fuzz/gossip_codec_fuzz.cc).
#pragma once

#include "gossip/frame_buffer.h"
#include "gossip/messages.h"
#include "storage/result.h"

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace meshdeploy::gossip {

// The type number of a message.
msg_type type_of(const message& m);

// Encodes one message with its envelope. Never fails; callers keep within the limits (see
// validate_meta and the max_* constants), which the decoder on the other side enforces.
std::vector<std::byte> encode(const message& m);

// Wraps already encoded messages into one compound message.
// REQUIRES: 1 <= parts.size() <= max_compound_parts; no part is itself compound.
std::vector<std::byte> encode_compound(const std::vector<std::vector<std::byte>>& parts);
std::vector<std::byte> encode_compound(std::span<const std::span<const std::byte>> parts);

// Bytes a part adds to a compound message beyond its own size (bin header).
inline constexpr std::size_t compound_part_overhead = 3;
// Bytes of a compound message's own envelope and array header.
inline constexpr std::size_t compound_header_bytes = 5;

// Decodes bytes received on `ch` into messages (a compound expands into its parts, in order).
// Errors (gossip/errc.h): too_large (over the channel's limit, or a field over its limit),
// version_unsupported (envelope version outside [protocol_version_min, protocol_version_max]),
// unknown_type (type number this build does not know, or not allowed on the channel),
// malformed (anything else: truncated, bad magic, wrong msgpack types, trailing bytes, nested
// compound). The message names the message type and field.
result<std::vector<message>> decode(std::span<const std::byte> bytes, channel ch);

// Decodes one message received on a stream if it is a direct message, without copying its
// payload (a swarm piece: 256 KiB). nullopt: another message type (use decode()). Errors: those
// decode(bytes, channel::stream) returns for the same bytes.
result<std::optional<direct_view>> decode_direct(std::span<const std::byte> bytes);

// Turns `payload`'s contents into encode(direct_msg{from, from_addr, user_type, contents}) by
// writing the message's envelope and fields in front of them (no copy of the payload).
// REQUIRES: payload.size() <= max_direct_payload_bytes; from, from_addr within the limits.
void prepend_direct(frame_buffer& payload, const std::string& from, const address& from_addr,
                    std::uint8_t user_type);

// Checks node metadata against the wire limits (name and host length, tag count and sizes,
// protocol_min <= protocol_max) so that an alive message about it always decodes.
result<void> validate_meta(const node_meta& meta);

}  // namespace meshdeploy::gossip

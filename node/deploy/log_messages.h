// Wire messages of remote log reads (node/deploy/log_service.h): one node asks a host for its
// script log of a deployment and the host answers, over the mesh's sealed direct messages
// (gossip user type 5, mesh::user_type_logs). Described in docs/wire-format.md "Log reads".
//
// Every message is one msgpack array: [protocol_version:u8, type:u8, body fields...].
//   request  = 1: [1, 1, request_id:u64, deployment_id:str, event:str, max_bytes:u32]
//   response = 2: [1, 2, request_id:u64, status:u8, message:str, text:bin, truncated:bool,
//                  full_bytes:u64]
// Types and statuses are numbered explicitly and only appended to; a receiver drops messages
// whose version is outside [log_protocol_min, log_protocol_max] or whose type it does not know.
// decode_log_message() is the boundary for untrusted bytes: it enforces the limits below, never
// throws and never crashes (fuzzed by tests/fuzz/log_messages_fuzz.cc).
#pragma once

#include "storage/result.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace meshdeploy::deploy {

inline constexpr std::uint8_t log_protocol_min = 1;
inline constexpr std::uint8_t log_protocol_max = 1;
inline constexpr std::uint8_t log_protocol_version = 1;  // what this build sends

enum class log_msg_type : std::uint8_t {
  request = 1,
  response = 2,
};

// Limits enforced by decode_log_message (and by the service before it encodes).
inline constexpr std::size_t max_log_id_bytes = 128;        // deployment id
inline constexpr std::size_t max_log_event_bytes = 64;      // lifecycle event name
inline constexpr std::size_t max_log_message_bytes = 1024;  // error message of a response
// The most log text one response carries (the host keeps the last bytes of a longer log).
inline constexpr std::size_t max_log_text_bytes = 1u << 20;
// A whole encoded message, at most: the text, the message, the fixed fields and slack. Well
// under gossip::max_direct_payload_bytes (8 MiB - 1 KiB).
inline constexpr std::size_t max_log_wire_bytes = max_log_text_bytes + 4096;

// Outcome of a request, as the answering host reports it. Unknown values (a newer peer) decode
// as they are; the asking node treats them like `internal`.
enum class log_status : std::uint8_t {
  ok = 0,
  not_found = 1,         // the host does not know the deployment, or holds no log of it
  invalid_argument = 2,  // e.g. the event is not a lifecycle event name
  busy = 3,              // the host is already serving its limit of log reads
  internal = 4,          // the host failed to read its log (the message says why)
};

// Asks the receiver for its script log of `deployment_id` (only the part of `event` when not
// empty), at most the last `max_bytes` bytes of it.
struct log_request {
  std::uint64_t request_id = 0;
  std::string deployment_id;    // 1..max_log_id_bytes
  std::string event;            // 0..max_log_event_bytes
  std::uint32_t max_bytes = 0;  // 1..max_log_text_bytes
  friend bool operator==(const log_request&, const log_request&) = default;
};

// The answer to the request with `request_id`. On ok, `text` is the log (or its last bytes when
// `truncated`; `full_bytes` is then the whole log's size). Otherwise `message` says why.
struct log_response {
  std::uint64_t request_id = 0;
  log_status status = log_status::ok;
  std::string message;  // 0..max_log_message_bytes
  std::string text;     // raw bytes of the log, 0..max_log_text_bytes
  bool truncated = false;
  std::uint64_t full_bytes = 0;
  friend bool operator==(const log_response&, const log_response&) = default;
};

using log_message = std::variant<log_request, log_response>;

// Encodes a message. REQUIRES: the fields are within the limits above (callers cut them first),
// so that the result decodes; the encoder itself does not check.
std::vector<std::byte> encode_log_message(const log_message& m);

// Decodes untrusted bytes. Errors (deploy::errc::invalid_argument, the message names the field
// and limit): over a limit, wrong version, unknown type, wrong field count or type, an empty
// deployment id, max_bytes 0, trailing bytes.
result<log_message> decode_log_message(std::span<const std::byte> bytes);

}  // namespace meshdeploy::deploy

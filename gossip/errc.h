// Error codes of gossip/ (membership core, wire codec, keyring and packet
// encryption). The code says which kind of failure it was, so the driver can
// count dropped input by reason; the message in `error` names the detail
// (field, line, key id, limit). Numbered explicitly; values are only
// appended, never renumbered or reused.
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace meshdeploy::gossip {

enum class errc : int {
  ok = 0,
  malformed = 1,            // input does not decode: truncated, wrong type, bad field
  too_large = 2,            // over a size or count limit (message names the limit)
  unknown_type = 3,         // a message type this build does not know, or not allowed here
  version_unsupported = 4,  // a wire/envelope version outside the range this build speaks
  unknown_key = 5,          // a sealed packet names a key id the keyring does not hold
  auth_failed = 6,          // AEAD verification failed: tampered, wrong key, cluster or version
  replayed = 7,             // a sequence number or frame already seen, or too old to tell
  invalid_key = 8,          // key text is not base64 of exactly 32 bytes
  key_id_collision = 9,     // another installed key has the same one-byte key id
  key_not_found = 10,       // use/remove of a key that is not installed
  primary_key = 11,         // refused: removing the primary key
  keyring_full = 12,        // install beyond max_keys
  keyring_invalid = 13,     // a keyring file does not parse (message names the line)
  unknown_member = 14,      // a direct message to a member that is unknown, dead or left
};

// The category named "meshdeploy.gossip".
const boost::system::error_category& gossip_category() noexcept;

boost::system::error_code make_error_code(errc e) noexcept;

}  // namespace meshdeploy::gossip

namespace boost::system {
template <>
struct is_error_code_enum<meshdeploy::gossip::errc> : std::true_type {};
}  // namespace boost::system

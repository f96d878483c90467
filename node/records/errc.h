// Error codes of node/records (signed records: envelope, payloads, store, sync)
// and node/security (identities, grants, the audit chain).
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace meshdeploy::records {

enum class errc : int {
  ok = 0,
  malformed = 1,            // bytes that do not decode (message names the field)
  too_large = 2,            // a field or the whole record over its limit
  version_unsupported = 3,  // envelope format version this build does not know
  bad_signature = 4,        // the signature does not verify under the writer key
  unknown_writer = 5,       // no grant / host key for the writer (yet)
  permission_denied = 6,    // the writer's grant does not allow the action on the resource
  schema = 7,               // payload valid msgpack but violates the record type's rules
  stale = 8,                // older than (or equal to) what is stored: replay, harmless
  conflict = 9,             // a second, different immutable record under the same key
  not_found = 10,
  io = 11,      // storage or filesystem failure (message has the detail)
  exists = 12,  // refusing to overwrite (key files)
};

const boost::system::error_category& records_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), records_category()};
}

}  // namespace meshdeploy::records

namespace boost::system {
template <>
struct is_error_code_enum<meshdeploy::records::errc> : std::true_type {};
}  // namespace boost::system

// Error codes of node/agent (local execution). Messages carry the detail;
// the code says which kind of failure it was, so callers and tests can branch
// on it. Numbered explicitly; values are never reused.
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace meshdeploy::agent {

enum class errc : int {
  ok = 0,
  appspec_missing = 1,  // no appspec.yml / appspec.yaml at the revision root
  appspec_invalid = 2,  // syntax, unknown key, wrong type, bad value (message names key and line)
  script_missing = 3,   // a hook's location does not exist in the revision
  script_not_executable = 4,  // a hook's script exists but lacks an execute bit
  archive_unreadable = 5,     // not a zip/tar/tar.gz, truncated, or corrupt
  archive_unsafe = 6,         // absolute path, "..", escaping link, device file, ...
  archive_too_large = 7,      // over the configured size or entry limits
  io_error = 8,               // a filesystem operation failed (message names the path)
  install_conflict = 9,       // DISALLOW and a destination file exists that we did not install
  permission_failed = 10,     // chmod/chown/acl/context could not be applied
  hook_failed = 11,           // a hook ended unsuccessfully (see hook_outcome for the kind)
  bad_revision = 12,          // revision id/format mismatch or missing revision
  interrupted = 13,           // the node stopped while the step was running
  invalid_argument = 14,      // a caller passed something unusable (names it)
};

const boost::system::error_category& agent_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), agent_category()};
}

}  // namespace meshdeploy::agent

namespace boost::system {
template <>
struct is_error_code_enum<meshdeploy::agent::errc> : std::true_type {};
}  // namespace boost::system

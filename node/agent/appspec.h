// The AppSpec file of a revision (`appspec.yml`, or `appspec.yaml`), as AWS
// CodeDeploy defines it for EC2/on-premises in-place deployments: parsing,
// validation, and the checks against the revision's files. What we accept,
// every rule, and where we differ from CodeDeploy's agent: docs/appspec.md.
//
// Every error is errc::appspec_invalid (or one of the codes named below) and
// its message names the file, the 1-based line and the key path, e.g.
//   "appspec.yml:12: hooks.AfterInstall[0].timeout: 4000 is over the 3600 s maximum"
//
// Thread safety: the functions keep no state and are reentrant. load_appspec
// and validate_revision_dir read the disk, so call them from a worker thread.
#pragma once

#include "node/agent/lifecycle_event.h"
#include "storage/result.h"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::agent {

// The longest a hook script may run, and the longest all scripts of one event
// may run together (CodeDeploy's limits).
inline constexpr std::chrono::seconds max_hook_timeout{3600};
inline constexpr std::chrono::seconds max_event_timeout{3600};
// Larger appspec texts are refused before YAML parsing (a decoder size limit;
// real appspecs are a few KiB).
inline constexpr std::size_t max_appspec_bytes = 1024 * 1024;

// What Install does with a destination file that the previous deployment of
// the group did not install. Default (key absent, no override): disallow.
enum class file_exists_behavior { disallow, overwrite, retain };

// "DISALLOW" -> disallow, "OVERWRITE", "RETAIN"; exact upper case as CodeDeploy
// spells them. Anything else -> nullopt.
std::optional<file_exists_behavior> parse_file_exists_behavior(std::string_view text);
// "DISALLOW", "OVERWRITE" or "RETAIN" (static string).
std::string_view to_string(file_exists_behavior b);

// One `files` entry. `source` is relative to the revision root, "/" meaning the
// whole revision; it never has a ".." component and is never absolute except
// for "/" itself. `destination` is absolute and has no ".." component. Both are
// stored as written. `line` is the 1-based line of the list item.
struct file_mapping {
  std::string source;
  std::string destination;
  int line = 0;
};

// One script of a hook. `location` is relative to the revision root, with no
// ".." component; a leading "/" in the appspec is removed (CodeDeploy joins it
// to the revision root too), so `revision_root / location` stays inside the
// revision lexically. `timeout` is 1..3600 s (default 3600). `runas` is empty
// when the key is absent (run as the node's user), never empty when given.
struct hook_script {
  std::string location;
  std::chrono::seconds timeout{3600};
  std::string runas;
  int line = 0;  // 1-based line of the list item
};

enum class object_type { file, directory };
// "file" or "directory".
std::string_view to_string(object_type t);

// SELinux `context` of a permissions rule. CodeDeploy documents `user`, while
// its agent reads `name`; both are accepted (not together) and land in `user`.
// Empty `user` or `range` means "leave as is". `type` is always set (required).
// `range` has been checked to be an MLS/MCS range: s<n>[-s<n>][:c<n>[.c<n>](,...)].
struct selinux_context {
  std::string user;
  std::string type;
  std::string range;
};

// One `permissions` entry. `object` is absolute with no ".." component, stored
// as written. `pattern` is "**" (everything below object, the default) or a
// glob over immediate children with `*` as the only wildcard and no "/";
// `except` entries are such globs too. `mode` holds the permission bits (at
// most 07777). `acls` entries have been checked against CodeDeploy's ACE
// syntax ([d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]]:[name]:perms). `types`
// empty means files and directories both; never given empty in the appspec.
struct permission_rule {
  std::string object;
  std::string pattern = "**";
  std::vector<std::string> except;
  std::optional<std::string> owner;
  std::optional<std::string> group;
  std::optional<unsigned> mode;
  std::vector<std::string> acls;
  std::optional<selinux_context> context;
  std::vector<object_type> types;
  int line = 0;  // 1-based line of the list item
};

struct appspec {
  std::string version;  // always "0.0"
  std::string os;       // always "linux"
  std::vector<file_mapping> files;
  std::optional<file_exists_behavior> file_exists;
  std::vector<permission_rule> permissions;
  // Only non-reserved events, each with at least one script; the scripts of
  // one event have timeouts adding up to at most 3600 s.
  std::map<lifecycle_event, std::vector<hook_script>> hooks;
  std::string file_name;  // "appspec.yml" or "appspec.yaml" (for messages)
};

// Parses and validates `yaml_text`. `file_name` prefixes every message:
// "appspec.yml:12: hooks.AfterInstall[0].timeout: ...". Lines are 1-based.
// Errors (all errc::appspec_invalid, naming key path and line): text over
// max_appspec_bytes; YAML syntax errors; a top level that is not a mapping;
// duplicate keys; unknown keys at any level; unknown hook names; a hook on a
// reserved event; wrong types (mapping/list/scalar); missing required keys
// (version, os, files[i].source/destination, permissions[i].object,
// permissions[i].context.type, hooks.<event>[i].location); version other than
// 0.0 (plain or quoted); os other than linux (windows gets its own message);
// destination or object not absolute or with ".."; source absolute (other than
// "/") or with ".."; location with ".."; timeout not a positive integer or over
// 3600; an event's timeouts adding up to over 3600; bad mode, type, acl,
// context range, pattern or except glob; bad file_exists_behavior; empty
// runas/owner/group. Null values of optional keys count as absent.
// Never throws (yaml-cpp exceptions are converted).
result<appspec> parse_appspec(std::string_view yaml_text,
                              std::string_view file_name = "appspec.yml");

// Finds appspec.yml (preferred when both exist) or appspec.yaml at
// `revision_root`, parses it with parse_appspec and checks it against the
// revision:
// - every hook script's location must resolve, following symlinks, to a
//   regular file inside revision_root, else errc::script_missing; it must have
//   at least one execute bit, else errc::script_not_executable. Both name the
//   key path (hooks.<event>[i].location), the line and the location.
// - every files[i].source must exist in the revision (a symlink counts as
//   existing), else errc::appspec_invalid naming files[i].source and the line.
// Errors: errc::appspec_missing when neither file exists; appspec_invalid when
// the appspec is not a regular file inside the revision, or as parse_appspec;
// io_error when it cannot be read; the first failing check above.
result<appspec> load_appspec(const std::filesystem::path& revision_root);

// Like load_appspec but collects every problem instead of stopping at the
// first (for `meshdeploy validate`): all parse problems, then the checks
// against the revision (only when the appspec parsed cleanly, since those
// checks need its values). `spec` is set when the appspec parsed with no
// problem (script or source problems may still be listed); `problems` is empty
// exactly when load_appspec would succeed.
struct validation_report {
  std::optional<appspec> spec;
  std::vector<error> problems;
};
validation_report validate_revision_dir(const std::filesystem::path& revision_root);

}  // namespace meshdeploy::agent

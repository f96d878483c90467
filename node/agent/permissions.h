// CodeDeploy's Install step, part two: the appspec's `permissions` section,
// applied to what this deployment installed (see node/agent/installer.h and
// docs/install.md for the rules and the differences from CodeDeploy).
//
// ACLs are written through the kernel's POSIX ACL extended attributes
// (system.posix_acl_access / system.posix_acl_default, the format of
// <linux/posix_acl_xattr.h>, which is what libacl and setfacl write too), so
// no extra library or tool is needed. SELinux contexts are written through
// the security.selinux attribute when SELinux is enabled, and skipped with a
// log line when it is not.
//
// Thread safety: the functions keep no state and are reentrant; they block on
// disk and on user/group lookups (NSS), so call them from a worker thread.
#pragma once

#include "node/agent/appspec.h"
#include "node/agent/installer.h"
#include "storage/result.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::agent {

// Applies spec.permissions to what THIS deployment installed (`installed`,
// from install_files), rule by rule in appspec order (a later rule wins on an
// object two rules select).
//
// A rule selects the installed entries that are below `object` and match
// `pattern` ("**" or empty: everything below object, at any depth; any other
// pattern: immediate children whose name matches, `*` the only wildcard),
// minus those whose path relative to `object` matches an `except` glob (so,
// as in CodeDeploy, excepts only ever exclude immediate children), filtered by
// `types` (empty: files and directories; symlinks count as files). The
// `object` itself is selected too when it is an installed entry, the pattern
// is "**" (or empty), and its type is in `types`. Entries that are not
// installed by this deployment are never touched.
//
// Per selected object, in this order: owner/group (lchown; before the mode,
// because chown clears setuid/setgid bits), mode (chmod, exactly the given
// bits), acls (replace the whole access ACL, as `setfacl --set` does: base
// entries from the mode just set, then the named entries; the mask is the
// one given or else the union of the group and named entries; "d:" entries
// form the default ACL of directories and are ignored on files), context
// (SELinux user/type/range replaced in the object's current context).
// Symlinks only get owner/group (on the link itself).
//
// All rules are checked before anything changes: owners, groups, ACL entries
// and their user/group names must resolve, and objects must be absolute.
// Errors: permission_failed naming the appspec line and the offending name or
// entry (unknown user or group, malformed ACL entry), or the path and the
// system error when a change fails (e.g. a filesystem without ACL support);
// io_error when an installed entry has disappeared. Changes made before a
// failure stay.
result<void> apply_permissions(const appspec& spec, const install_manifest& installed,
                               const std::filesystem::path& install_root,
                               const install_log& log = {});

// Does `name` match the glob `pattern`? `*` matches any run of characters
// (possibly empty, including a leading '.'); every other character matches
// itself. A `name` containing '/' never matches, as in CodeDeploy's agent.
bool glob_match(std::string_view pattern, std::string_view name);

// One parsed ACL entry of the appspec's `acls` list. Exposed for tests.
struct acl_entry {
  enum class kind : std::uint16_t { user, group, mask, other };
  bool is_default = false;  // "d:" / "default:" prefix
  kind tag = kind::user;
  std::string name;    // "" for the owning user/group, mask and other
  unsigned perms = 0;  // rwx as 4|2|1
};

// Parses one entry as CodeDeploy's agent does:
// [d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]]:[name]:perms, where a missing
// tag means user ("alice:rw") and perms is "rwx" letters and '-' in any order
// or one octal digit. As in CodeDeploy, an access (non-default) user or group
// entry must be named: the base entries come from `mode`.
// Errors: permission_failed quoting the entry and saying what is wrong.
result<acl_entry> parse_acl_entry(std::string_view text);

// The SELinux context `current` ("user:role:type:range") with the rule's
// user, type and range put in (role kept). Exposed for tests.
// Errors: permission_failed when `current` has fewer than three fields.
result<std::string> merge_selinux_context(std::string_view current, const selinux_context& ctx);

}  // namespace meshdeploy::agent

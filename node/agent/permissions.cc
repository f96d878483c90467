#include "node/agent/permissions.h"

#include "node/agent/errc.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <endian.h>
#include <grp.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <map>
#include <optional>
#include <pwd.h>
#include <string>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

namespace meshdeploy::agent {
namespace fs = std::filesystem;
namespace {

constexpr const char* acl_access_xattr = "system.posix_acl_access";
constexpr const char* acl_default_xattr = "system.posix_acl_default";
constexpr const char* selinux_xattr = "security.selinux";
constexpr std::uint32_t no_id = static_cast<std::uint32_t>(ACL_UNDEFINED_ID);
// NSS buffers grow up to this size for huge group entries.
constexpr std::size_t max_nss_buffer = 1 << 20;

std::string sys_error(int e) { return std::generic_category().message(e); }

void emit(const install_log& log, std::string_view line) {
  if (log) log(line);
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::uint32_t> parse_id(std::string_view s) {
  if (!all_digits(s) || s.size() > 9) return std::nullopt;
  return static_cast<std::uint32_t>(std::stoul(std::string(s)));
}

// getpwnam_r / getgrnam_r with a growing buffer. A name that is not found but
// is all digits is taken as a numeric id (as chown and setfacl do).
std::optional<uid_t> lookup_user(const std::string& name) {
  std::vector<char> buf(16 * 1024);
  for (;;) {  // bounded: the buffer doubles up to max_nss_buffer
    struct passwd pw;
    struct passwd* found = nullptr;
    int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < max_nss_buffer) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc == 0 && found != nullptr) return found->pw_uid;
    break;
  }
  if (auto id = parse_id(name)) return static_cast<uid_t>(*id);
  return std::nullopt;
}

std::optional<gid_t> lookup_group(const std::string& name) {
  std::vector<char> buf(16 * 1024);
  for (;;) {  // bounded: the buffer doubles up to max_nss_buffer
    struct group gr;
    struct group* found = nullptr;
    int rc = ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < max_nss_buffer) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc == 0 && found != nullptr) return found->gr_gid;
    break;
  }
  if (auto id = parse_id(name)) return static_cast<gid_t>(*id);
  return std::nullopt;
}

// An ACL entry with its name resolved to an id.
struct resolved_ace {
  bool is_default = false;
  std::uint16_t tag = 0;  // ACL_USER_OBJ, ACL_USER, ...
  std::uint32_t id = no_id;
  std::uint16_t perms = 0;
};

struct resolved_rule {
  const permission_rule* rule = nullptr;
  std::string where;       // "appspec.yml:12: permissions[0]" for messages
  std::string object;      // normalised host path
  std::string prefix;      // object + "/" ("/" for the root)
  bool everything = true;  // pattern "**" or empty
  bool want_files = true;
  bool want_dirs = true;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::vector<resolved_ace> access;
  std::vector<resolved_ace> defaults;
};

result<resolved_rule> resolve(const permission_rule& r, std::string where) {
  resolved_rule out;
  out.rule = &r;
  out.where = std::move(where);
  auto rule_error = [&out](std::string_view what) {
    return make_error(errc::permission_failed, fmt::format("{}.{}", out.where, what));
  };
  auto object = normalize_host_path(r.object);
  if (!object) return rule_error(fmt::format("object: {}", object.error().message));
  out.object = std::move(object).value();
  out.prefix = out.object == "/" ? "/" : out.object + "/";
  out.everything = r.pattern.empty() || r.pattern == "**";
  if (!r.types.empty()) {
    out.want_files = std::find(r.types.begin(), r.types.end(), object_type::file) != r.types.end();
    out.want_dirs =
        std::find(r.types.begin(), r.types.end(), object_type::directory) != r.types.end();
  }
  if (r.owner) {
    out.uid = lookup_user(*r.owner);
    if (!out.uid) return rule_error(fmt::format("owner: unknown user \"{}\"", *r.owner));
  }
  if (r.group) {
    out.gid = lookup_group(*r.group);
    if (!out.gid) return rule_error(fmt::format("group: unknown group \"{}\"", *r.group));
  }
  for (const std::string& text : r.acls) {
    auto parsed_r = parse_acl_entry(text);
    if (!parsed_r) return rule_error(fmt::format("acls: {}", parsed_r.error().message));
    const acl_entry* parsed = &parsed_r.value();
    resolved_ace ace;
    ace.is_default = parsed->is_default;
    ace.perms = static_cast<std::uint16_t>(parsed->perms);
    switch (parsed->tag) {
      case acl_entry::kind::user:
        if (parsed->name.empty()) {
          ace.tag = ACL_USER_OBJ;
        } else {
          auto uid = lookup_user(parsed->name);
          if (!uid) {
            return rule_error(fmt::format("acls: \"{}\": unknown user \"{}\"", text, parsed->name));
          }
          ace.tag = ACL_USER;
          ace.id = *uid;
        }
        break;
      case acl_entry::kind::group:
        if (parsed->name.empty()) {
          ace.tag = ACL_GROUP_OBJ;
        } else {
          auto gid = lookup_group(parsed->name);
          if (!gid) {
            return rule_error(
                fmt::format("acls: \"{}\": unknown group \"{}\"", text, parsed->name));
          }
          ace.tag = ACL_GROUP;
          ace.id = *gid;
        }
        break;
      case acl_entry::kind::mask:
        ace.tag = ACL_MASK;
        break;
      case acl_entry::kind::other:
        ace.tag = ACL_OTHER;
        break;
    }
    (ace.is_default ? out.defaults : out.access).push_back(ace);
  }
  return out;
}

// Builds a complete ACL the way `setfacl --set` would: base entries from
// `mode`, overridden by `given`; the mask is the given one or the union of
// the group-class entries when there are named entries.
std::vector<resolved_ace> complete_acl(const std::vector<resolved_ace>& given, mode_t mode) {
  std::map<std::pair<std::uint16_t, std::uint32_t>, std::uint16_t> entries;
  entries[{ACL_USER_OBJ, no_id}] = static_cast<std::uint16_t>((mode >> 6) & 7);
  entries[{ACL_GROUP_OBJ, no_id}] = static_cast<std::uint16_t>((mode >> 3) & 7);
  entries[{ACL_OTHER, no_id}] = static_cast<std::uint16_t>(mode & 7);
  bool named = false, mask = false;
  for (const resolved_ace& a : given) {
    entries[{a.tag, a.id}] = a.perms;  // the last entry for a key wins
    named = named || a.tag == ACL_USER || a.tag == ACL_GROUP;
    mask = mask || a.tag == ACL_MASK;
  }
  if (named && !mask) {
    std::uint16_t m = 0;
    for (const auto& [key, perms] : entries) {
      if (key.first == ACL_USER || key.first == ACL_GROUP || key.first == ACL_GROUP_OBJ) m |= perms;
    }
    entries[{ACL_MASK, no_id}] = m;
  }
  std::vector<resolved_ace> out;
  // std::map orders by (tag, id): the order the kernel requires.
  for (const auto& [key, perms] : entries) out.push_back({false, key.first, key.second, perms});
  return out;
}

// The on-disk form of <linux/posix_acl_xattr.h>: a little-endian version
// header, then {tag, perm, id} entries.
std::string encode_acl(const std::vector<resolved_ace>& acl) {
  std::string buf;
  buf.resize(sizeof(posix_acl_xattr_header) + acl.size() * sizeof(posix_acl_xattr_entry));
  posix_acl_xattr_header header;
  header.a_version = htole32(POSIX_ACL_XATTR_VERSION);
  std::memcpy(buf.data(), &header, sizeof(header));
  std::size_t off = sizeof(header);
  for (const resolved_ace& a : acl) {
    posix_acl_xattr_entry e;
    e.e_tag = htole16(a.tag);
    e.e_perm = htole16(a.perms);
    e.e_id = htole32(a.id);
    std::memcpy(buf.data() + off, &e, sizeof(e));
    off += sizeof(e);
  }
  return buf;
}

result<void> set_acl(const fs::path& real, const char* xattr, const std::vector<resolved_ace>& acl,
                     const std::string& where) {
  const std::string buf = encode_acl(acl);
  if (::setxattr(real.c_str(), xattr, buf.data(), buf.size(), 0) != 0) {
    int e = errno;
    std::string why = e == EOPNOTSUPP ? "the filesystem does not support POSIX ACLs" : sys_error(e);
    return make_error(
        errc::permission_failed,
        fmt::format("{}: cannot set the {} ACL of {}: {}", where,
                    xattr == acl_access_xattr ? "access" : "default", real.string(), why));
  }
  return ok();
}

bool selinux_enabled() {
  constexpr long selinux_magic = 0xf97cff8c;
  struct statfs sfs;
  if (::statfs("/sys/fs/selinux", &sfs) != 0) return false;
  if (static_cast<long>(sfs.f_type) != selinux_magic) return false;
  return ::access("/sys/fs/selinux/enforce", F_OK) == 0;
}

result<void> set_context(const fs::path& real, const selinux_context& ctx,
                         const std::string& where) {
  std::array<char, 1024> buf;
  ssize_t n = ::getxattr(real.c_str(), selinux_xattr, buf.data(), buf.size());
  if (n < 0) {
    return make_error(errc::permission_failed,
                      fmt::format("{}: cannot read the SELinux context of {}: {}", where,
                                  real.string(), sys_error(errno)));
  }
  std::string current(buf.data(), static_cast<std::size_t>(n));
  while (!current.empty() && current.back() == '\0') current.pop_back();
  auto merged = merge_selinux_context(current, ctx);
  if (!merged) {
    return make_error(errc::permission_failed,
                      fmt::format("{}: {}: {}", where, real.string(), merged.error().message));
  }
  const std::string& context = merged.value();
  if (::setxattr(real.c_str(), selinux_xattr, context.c_str(), context.size() + 1, 0) != 0) {
    return make_error(errc::permission_failed,
                      fmt::format("{}: cannot set the SELinux context {} on {}: {}", where, context,
                                  real.string(), sys_error(errno)));
  }
  return ok();
}

// Does rule `rr` select installed entry `e`?
bool selects(const resolved_rule& rr, const installed_entry& e, bool is_dir) {
  if (is_dir ? !rr.want_dirs : !rr.want_files) return false;
  if (e.path == rr.object) return rr.everything;
  if (!e.path.starts_with(rr.prefix) || e.path.size() == rr.prefix.size()) return false;
  std::string_view rel = std::string_view(e.path).substr(rr.prefix.size());
  if (!rr.everything && !glob_match(rr.rule->pattern, rel)) return false;
  for (const std::string& ex : rr.rule->except) {
    if (glob_match(ex, rel)) return false;
  }
  return true;
}

// Tracks which once-per-rule notices were already logged.
struct rule_notices {
  bool symlink = false;
  bool default_acl_on_file = false;
  bool selinux_off = false;
};

result<void> apply_to(const resolved_rule& rr, const fs::path& real, const struct stat& st,
                      const std::string& host, bool selinux_on, rule_notices& notices,
                      const install_log& log) {
  const permission_rule& r = *rr.rule;
  auto failed = [&](std::string_view what, int e) {
    return make_error(errc::permission_failed, fmt::format("{}: cannot {} {}: {}", rr.where, what,
                                                           real.string(), sys_error(e)));
  };
  if (rr.uid || rr.gid) {
    uid_t uid = rr.uid ? *rr.uid : static_cast<uid_t>(-1);
    gid_t gid = rr.gid ? *rr.gid : static_cast<gid_t>(-1);
    if (::lchown(real.c_str(), uid, gid) != 0) return failed("change the owner of", errno);
  }
  if (S_ISLNK(st.st_mode)) {
    if ((r.mode || !r.acls.empty() || r.context) && !notices.symlink) {
      notices.symlink = true;
      emit(log, fmt::format("permissions (line {}): symlinks such as {} only get owner and "
                            "group; mode, acls and context are not applied to them",
                            r.line, host));
    }
    return ok();
  }
  mode_t mode = st.st_mode & 07777;
  if (r.mode) {
    mode = static_cast<mode_t>(*r.mode & 07777);
    if (::chmod(real.c_str(), mode) != 0) return failed("chmod", errno);
  }
  if (!rr.access.empty()) {
    MESH_CHECK(set_acl(real, acl_access_xattr, complete_acl(rr.access, mode), rr.where));
  }
  if (!rr.defaults.empty()) {
    if (S_ISDIR(st.st_mode)) {
      MESH_CHECK(set_acl(real, acl_default_xattr, complete_acl(rr.defaults, mode), rr.where));
    } else if (!notices.default_acl_on_file) {
      notices.default_acl_on_file = true;
      emit(log, fmt::format("permissions (line {}): default (d:) ACL entries apply to "
                            "directories only; not applied to files such as {}",
                            r.line, host));
    }
  }
  if (r.context) {
    if (selinux_on) {
      MESH_CHECK(set_context(real, *r.context, rr.where));
    } else if (!notices.selinux_off) {
      notices.selinux_off = true;
      emit(log, fmt::format("permissions (line {}): SELinux is not enabled on this host; the "
                            "context was skipped",
                            r.line));
    }
  }
  return ok();
}

std::optional<unsigned> parse_perms(std::string_view s) {
  if (s.size() == 1 && s[0] >= '0' && s[0] <= '7') return static_cast<unsigned>(s[0] - '0');
  unsigned perms = 0;
  for (char c : s) {
    switch (c) {
      case 'r':
        perms |= 4;
        break;
      case 'w':
        perms |= 2;
        break;
      case 'x':
        perms |= 1;
        break;
      case '-':
        break;
      default:
        return std::nullopt;
    }
  }
  return perms;
}

std::optional<acl_entry::kind> parse_tag(std::string_view s) {
  if (s == "u" || s == "user") return acl_entry::kind::user;
  if (s == "g" || s == "group") return acl_entry::kind::group;
  if (s == "m" || s == "mask") return acl_entry::kind::mask;
  if (s == "o" || s == "other") return acl_entry::kind::other;
  return std::nullopt;
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view name) {
  if (name.find('/') != std::string_view::npos) return false;
  // Iterative wildcard match with backtracking to the last '*': O(n*m) worst
  // case, no recursion.
  std::size_t p = 0, n = 0;
  std::size_t star = std::string_view::npos, star_n = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_n = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++star_n;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

result<acl_entry> parse_acl_entry(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return make_error(errc::permission_failed,
                      fmt::format("invalid ACL entry \"{}\": {}", text, why));
  };
  std::vector<std::string_view> parts;
  for (std::size_t pos = 0;;) {  // ends at the last ':'-separated field
    std::size_t next = text.find(':', pos);
    parts.push_back(text.substr(pos, next == std::string_view::npos ? text.npos : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  if (parts.size() < 2 || parts.size() > 4) {
    return bad("expected [d:][u|g|m|o]:[name]:perms");
  }
  acl_entry out;
  std::size_t i = 0;
  if (parts.size() == 4) {
    if (parts[0] != "d" && parts[0] != "default")
      return bad("the first field must be d or default");
    out.is_default = true;
    ++i;
  }
  std::optional<acl_entry::kind> tag;
  if (parts.size() - i == 3) {
    if (parts[i] == "d" || parts[i] == "default") {
      if (out.is_default) return bad("default given twice");
      out.is_default = true;
    } else {
      tag = parse_tag(parts[i]);
      if (!tag) return bad(fmt::format("unknown type \"{}\" (use u, g, m or o)", parts[i]));
    }
    ++i;
  }
  // parts[i] is the name (or, with no type, a bare m/o/user name).
  std::string_view name = parts[i];
  if (!tag) {
    if (name == "m" || name == "mask") {
      tag = acl_entry::kind::mask;
      name = {};
    } else if (name == "o" || name == "other") {
      tag = acl_entry::kind::other;
      name = {};
    } else {
      tag = acl_entry::kind::user;
    }
  }
  out.tag = *tag;
  out.name = std::string(name);
  if ((out.tag == acl_entry::kind::mask || out.tag == acl_entry::kind::other) &&
      !out.name.empty()) {
    return bad("mask and other entries take no name");
  }
  if (!out.is_default && out.name.empty() &&
      (out.tag == acl_entry::kind::user || out.tag == acl_entry::kind::group)) {
    return bad("the owning user and group come from mode; name a user or group");
  }
  auto perms = parse_perms(parts[i + 1]);
  if (!perms)
    return bad(
        fmt::format("permissions \"{}\" are not rwx letters, '-' or one octal "
                    "digit",
                    parts[i + 1]));
  out.perms = *perms;
  return out;
}

result<std::string> merge_selinux_context(std::string_view current, const selinux_context& ctx) {
  // user:role:type[:range], where the range itself may contain ':'.
  std::vector<std::string> fields;
  std::size_t pos = 0;
  for (int k = 0; k < 3; ++k) {
    std::size_t next = current.find(':', pos);
    if (next == std::string_view::npos) {
      if (k < 2) {
        return make_error(
            errc::permission_failed,
            fmt::format("SELinux context \"{}\" is not user:role:type[:range]", current));
      }
      fields.emplace_back(current.substr(pos));
      pos = current.size() + 1;
      break;
    }
    fields.emplace_back(current.substr(pos, next - pos));
    pos = next + 1;
  }
  std::string range = pos <= current.size() ? std::string(current.substr(pos)) : std::string();
  if (!ctx.user.empty()) fields[0] = ctx.user;
  if (!ctx.type.empty()) fields[2] = ctx.type;
  if (!ctx.range.empty()) range = ctx.range;
  std::string out = fields[0] + ":" + fields[1] + ":" + fields[2];
  if (!range.empty()) out += ":" + range;
  return out;
}

result<void> apply_permissions(const appspec& spec, const install_manifest& installed,
                               const fs::path& install_root, const install_log& log) {
  if (spec.permissions.empty()) return ok();
  std::vector<resolved_rule> rules;
  rules.reserve(spec.permissions.size());
  const std::string file = spec.file_name.empty() ? "appspec.yml" : spec.file_name;
  for (std::size_t i = 0; i < spec.permissions.size(); ++i) {
    const permission_rule& r = spec.permissions[i];
    MESH_TRY(resolved_rule rr, resolve(r, fmt::format("{}:{}: permissions[{}]", file, r.line, i)));
    rules.push_back(std::move(rr));
  }

  std::error_code ec;
  const fs::path root_canonical = fs::canonical(install_root, ec);
  if (ec) {
    return make_error(errc::invalid_argument,
                      fmt::format("install root {} is not an existing directory: {}",
                                  install_root.string(), ec.message()));
  }
  const bool selinux_on =
      std::any_of(rules.begin(), rules.end(), [](const auto& rr) { return rr.rule->context; }) &&
      selinux_enabled();

  for (const resolved_rule& rr : rules) {
    rule_notices notices;
    std::size_t applied = 0;
    std::string last_checked_parent;
    for (const installed_entry& e : installed) {
      // Cheap path test first; the filesystem is only asked about candidates.
      if (e.path != rr.object && !e.path.starts_with(rr.prefix)) continue;
      if (!selects(rr, e, e.directory)) continue;
      const fs::path real = real_path(install_root, e.path);
      const fs::path parent = real.parent_path();
      if (parent.native() != last_checked_parent) {
        if (auto inside = check_inside_root(root_canonical, parent); !inside) {
          return make_error(errc::permission_failed,
                            fmt::format("{}: {}: {}", rr.where, e.path, inside.error().message));
        }
        last_checked_parent = parent.native();
      }
      struct stat st;
      if (::lstat(real.c_str(), &st) != 0) {
        return make_error(errc::io_error, fmt::format("{}: installed entry {} ({}): {}", rr.where,
                                                      e.path, real.string(), sys_error(errno)));
      }
      MESH_CHECK(apply_to(rr, real, st, e.path, selinux_on, notices, log));
      ++applied;
    }
    emit(log, fmt::format("permissions (line {}): applied to {} installed entr{} under {}",
                          rr.rule->line, applied, applied == 1 ? "y" : "ies", rr.object));
  }
  return ok();
}

}  // namespace meshdeploy::agent

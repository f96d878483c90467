#include "node/agent/appspec.h"

#include "node/agent/errc.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <exception>
#include <fstream>
#include <initializer_list>
#include <system_error>
#include <utility>

namespace meshdeploy::agent {
namespace fs = std::filesystem;

namespace {

// --- small text helpers -------------------------------------------------------

// The string quoted for a message, shortened so that a huge value cannot blow
// up the message.
std::string quote(std::string_view s) {
  constexpr std::size_t max_shown = 80;
  std::string out = "\"";
  for (char c : s.substr(0, max_shown)) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  if (s.size() > max_shown) out += "...";
  out += '"';
  return out;
}

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

bool has_dotdot_component(std::string_view path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

std::string join(std::initializer_list<std::string_view> items) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// --- value checks shared with CodeDeploy's agent ------------------------------

// Octal permission bits: 1 to 4 octal digits ("644", "0644", "4755"), or 5
// digits starting with 0 ("04755"). Returns nullopt otherwise.
std::optional<unsigned> parse_mode(std::string_view text) {
  if (text.size() == 5 && text.front() == '0') text.remove_prefix(1);
  if (text.empty() || text.size() > 4) return std::nullopt;
  unsigned mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return std::nullopt;
    mode = mode * 8 + static_cast<unsigned>(c - '0');
  }
  return mode;
}

// Checks one ACL entry the way CodeDeploy's agent does:
// [d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]]:[name]:perms, perms being one
// octal digit or letters from "rwx-". Returns "" when fine, else why not.
std::string check_ace(std::string_view ace) {
  std::vector<std::string_view> parts = split(ace, ':');
  std::reverse(parts.begin(), parts.end());
  if (parts.size() < 2 || parts.size() > 4) {
    return "expected [d:][u|g|m|o]:[name]:perms with 2 to 4 fields separated by ':'";
  }
  bool is_default = false;
  std::string_view type;
  std::string_view name;
  if (parts.size() == 4) {
    if (parts[3] != "d" && parts[3] != "default")
      return "the first of 4 fields must be d or default";
    is_default = true;
  }
  if (parts.size() >= 3) {
    const std::string_view t = parts[2];
    if (t == "d" || t == "default") {
      if (is_default) return "default given twice";
      is_default = true;
    } else if (t == "m" || t == "mask") {
      type = "mask";
    } else if (t == "o" || t == "other") {
      type = "other";
    } else if (t == "g" || t == "group") {
      type = "group";
    } else if (t == "u" || t == "user") {
      type = "user";
    } else {
      return fmt::format("unknown entry type {} (use u, g, m, o, or d for default)", quote(t));
    }
  }
  const std::string_view n = parts[1];
  if (n == "m" || n == "mask") {
    if (type.empty()) {
      type = "mask";
    } else {
      name = "mask";
    }
  } else if (n == "o" || n == "other") {
    if (type.empty()) {
      type = "other";
    } else {
      name = "other";
    }
  } else {
    if (type.empty()) type = "user";
    name = n;
  }
  if ((type == "mask" || type == "other") && !name.empty()) {
    return fmt::format("a {} entry takes no name", type);
  }
  if (!is_default && type != "mask" && name.empty()) {
    return "an entry without a name is the base entry: set it with mode instead";
  }
  const std::string_view perms = parts[0];
  if (perms.size() == 1 && perms[0] >= '0' && perms[0] <= '7') return "";
  for (char c : perms) {
    if (c != 'r' && c != 'w' && c != 'x' && c != '-') {
      return fmt::format("invalid permission character {} (use r, w, x, - or one octal digit)",
                         quote(std::string_view(&c, 1)));
    }
  }
  return "";
}

// Splits `s` at the first `sep` into one or two non-empty parts, as
// CodeDeploy's RangeInfo#ensure_parts does. Empty result = invalid.
std::vector<std::string_view> ensure_parts(std::string_view s, char sep) {
  const std::size_t at = s.find(sep);
  std::vector<std::string_view> parts;
  if (at == std::string_view::npos) {
    parts.push_back(s);
  } else {
    parts.push_back(s.substr(0, at));
    parts.push_back(s.substr(at + 1));
  }
  for (std::string_view p : parts) {
    if (p.empty()) return {};
  }
  return parts;
}

// "<prefix><digits>" -> the number; nullopt when malformed or over `max`.
std::optional<unsigned> prefixed_number(std::string_view s, char prefix, unsigned max) {
  if (s.size() < 2 || s.front() != prefix || !all_digits(s.substr(1))) return std::nullopt;
  unsigned value = 0;
  const auto [ptr, ec] = std::from_chars(s.data() + 1, s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size() || value > max) return std::nullopt;
  return value;
}

// An SELinux MLS/MCS range, s<n>[-s<n>][:c<n>[.c<n>](,c<n>[.c<n>])*], with the
// checks of CodeDeploy's RangeInfo: high >= low, categories 0..1023, ranges
// ascending, no category twice. Returns "" when fine, else why not.
std::string check_range(std::string_view range) {
  constexpr unsigned max_sensitivity = 1u << 30;
  constexpr unsigned max_category = 1023;
  const auto parts = ensure_parts(range, ':');
  if (parts.empty()) return "expected s<n>[-s<n>][:<categories>]";
  const auto levels = ensure_parts(parts[0], '-');
  if (levels.empty()) return "expected a sensitivity s<n> or s<n>-s<n>";
  const auto low = prefixed_number(levels[0], 's', max_sensitivity);
  if (!low) return fmt::format("invalid sensitivity {}", quote(levels[0]));
  if (levels.size() == 2) {
    const auto high = prefixed_number(levels[1], 's', max_sensitivity);
    if (!high) return fmt::format("invalid sensitivity {}", quote(levels[1]));
    if (*high < *low) return "the high sensitivity is below the low one";
  }
  if (parts.size() == 1) return "";
  std::array<bool, max_category + 1> seen{};
  for (std::string_view item : split(parts[1], ',')) {
    unsigned first = 0;
    unsigned last = 0;
    if (item.find('.') != std::string_view::npos) {
      const auto ends = ensure_parts(item, '.');
      if (ends.empty()) return fmt::format("invalid category range {}", quote(item));
      const auto a = prefixed_number(ends[0], 'c', max_category);
      const auto b = prefixed_number(ends[1], 'c', max_category);
      if (!a || !b) return fmt::format("invalid category range {}", quote(item));
      if (*b < *a) return fmt::format("category range {} is descending", quote(item));
      first = *a;
      last = *b;
    } else {
      const auto c = prefixed_number(item, 'c', max_category);
      if (!c) return fmt::format("invalid category {} (c0 to c1023)", quote(item));
      first = last = *c;
    }
    for (unsigned c = first; c <= last; ++c) {
      if (seen[c]) return fmt::format("category c{} appears twice", c);
      seen[c] = true;
    }
  }
  return "";
}

// --- the parser -----------------------------------------------------------------

// A problem plus its line, so problems can be reported in document order.
struct problem {
  int line = 0;
  error err;
};

int line_of(const YAML::Mark& m) { return m.is_null() ? 0 : m.line + 1; }

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return fmt::format("the value {}", quote(n.Scalar()));
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Undefined:
      break;
  }
  return "an undefined value";
}

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

std::string item(const std::string& path, std::size_t i) { return fmt::format("{}[{}]", path, i); }

// One key of a mapping: the key node (for its line) and the value node.
struct field {
  YAML::Node key;
  YAML::Node value;
  std::string path;
  [[nodiscard]] YAML::Mark mark() const { return key.Mark(); }
};

class fields {
 public:
  [[nodiscard]] const field* find(std::string_view name) const {
    for (const auto& [k, f] : entries_) {
      if (k == name) return &f;
    }
    return nullptr;
  }
  // A field that is present and not null (null counts as absent).
  [[nodiscard]] const field* given(std::string_view name) const {
    const field* f = find(name);
    return f != nullptr && !f->value.IsNull() ? f : nullptr;
  }
  [[nodiscard]] const std::vector<std::pair<std::string, field>>& entries() const {
    return entries_;
  }
  void add(std::string key, field f) { entries_.emplace_back(std::move(key), std::move(f)); }

 private:
  std::vector<std::pair<std::string, field>> entries_;  // document order
};

class parser {
 public:
  explicit parser(std::string_view file_name) : file_name_(file_name) {
    spec_.file_name = std::string(file_name);
  }

  void parse(std::string_view text) {
    if (text.size() > max_appspec_bytes) {
      fail(0, "",
           fmt::format("the file is {} bytes, over the {} byte limit", text.size(),
                       max_appspec_bytes));
      return;
    }
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
      fail(line_of(e.mark), "", fmt::format("YAML syntax error: {}", e.msg));
      return;
    }
    // yaml-cpp may throw from node accessors on malformed trees; the parser
    // only uses non-throwing accessors, but the boundary stays watertight.
    try {
      parse_top(root);
    } catch (const YAML::Exception& e) {
      fail(line_of(e.mark), "", fmt::format("YAML error: {}", e.msg));
    } catch (const std::exception& e) {
      fail(0, "", fmt::format("cannot parse: {}", e.what()));
    }
    std::stable_sort(problems_.begin(), problems_.end(),
                     [](const problem& a, const problem& b) { return a.line < b.line; });
  }

  appspec& spec() { return spec_; }
  std::vector<problem>& problems() { return problems_; }

 private:
  void fail(int line, const std::string& path, const std::string& message) {
    std::string text = file_name_;
    if (line > 0) text += fmt::format(":{}", line);
    text += ": ";
    if (!path.empty()) text += path + ": ";
    text += message;
    problems_.push_back({line, make_error(errc::appspec_invalid, std::move(text))});
  }
  void fail(const YAML::Mark& mark, const std::string& path, const std::string& message) {
    fail(line_of(mark), path, message);
  }

  // Reads the keys of mapping `node` (whose own key path is `path`) in
  // document order. Non-scalar keys, duplicate keys and, unless `allowed` is
  // empty, keys not in `allowed` are reported and left out.
  fields read_map(const YAML::Node& node, const std::string& path,
                  std::initializer_list<std::string_view> allowed) {
    fields out;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;
      if (!key.IsScalar()) {
        fail(key.Mark(), path,
             fmt::format("a key must be a plain string, found {}", describe(key)));
        continue;
      }
      const std::string name = key.Scalar();
      const std::string key_path = child(path, name);
      if (out.find(name) != nullptr) {
        fail(
            key.Mark(), key_path,
            fmt::format("duplicate key (first given on line {})", line_of(out.find(name)->mark())));
        continue;
      }
      if (allowed.size() != 0 && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        fail(key.Mark(), key_path, fmt::format("unknown key (expected {})", join(allowed)));
        continue;
      }
      out.add(name, field{key, it->second, key_path});
    }
    return out;
  }

  bool expect_map(const YAML::Node& node, const YAML::Mark& mark, const std::string& path) {
    if (node.IsMap()) return true;
    fail(mark, path, fmt::format("expected a mapping, found {}", describe(node)));
    return false;
  }
  bool expect_list(const field& f) {
    if (f.value.IsSequence()) return true;
    fail(f.mark(), f.path, fmt::format("expected a list, found {}", describe(f.value)));
    return false;
  }

  // The scalar text of `node`, or nullopt (reported) when it is a list or a
  // mapping.
  std::optional<std::string> scalar(const YAML::Node& node, const YAML::Mark& mark,
                                    const std::string& path) {
    if (node.IsScalar()) return node.Scalar();
    fail(mark, path, fmt::format("expected a single value, found {}", describe(node)));
    return std::nullopt;
  }
  std::optional<std::string> scalar(const field& f) { return scalar(f.value, f.mark(), f.path); }

  // A required key's scalar value; reports a missing key on `map_mark`'s line.
  std::optional<std::string> required(const fields& fs, std::string_view name,
                                      const YAML::Mark& map_mark, const std::string& map_path,
                                      std::string_view hint = {}) {
    const field* f = fs.given(name);
    if (f == nullptr) {
      fail(map_mark, child(map_path, name),
           fmt::format("required key is missing{}{}", hint.empty() ? "" : " ", hint));
      return std::nullopt;
    }
    return scalar(*f);
  }

  // A list of scalars (each reported when it is not one).
  std::vector<std::pair<std::string, YAML::Mark>> scalar_list(const field& f) {
    std::vector<std::pair<std::string, YAML::Mark>> out;
    if (!expect_list(f)) return out;
    for (std::size_t i = 0; i < f.value.size(); ++i) {
      const YAML::Node n = f.value[i];
      if (auto s = scalar(n, n.Mark(), item(f.path, i))) out.emplace_back(*s, n.Mark());
    }
    return out;
  }

  void parse_top(const YAML::Node& root) {
    if (!root.IsMap()) {
      fail(root.Mark(), "",
           fmt::format("the appspec must be a mapping with version, os, files, permissions, "
                       "hooks, found {}",
                       describe(root)));
      return;
    }
    const fields fs = read_map(
        root, "", {"version", "os", "files", "file_exists_behavior", "permissions", "hooks"});
    const YAML::Mark top = root.Mark();

    if (auto v = required(fs, "version", top, "", "(version: 0.0)")) {
      // Plain 0.0 and quoted "0.0" alike: yaml-cpp keeps the text as written.
      if (*v == "0.0") {
        spec_.version = *v;
      } else {
        fail(fs.find("version")->mark(), "version",
             fmt::format("{} is not supported: the only AppSpec version is 0.0", quote(*v)));
      }
    }
    if (auto os = required(fs, "os", top, "", "(os: linux)")) {
      const YAML::Mark m = fs.find("os")->mark();
      if (*os == "linux") {
        spec_.os = *os;
      } else if (*os == "windows") {
        fail(m, "os",
             "windows is not supported: meshdeploy deploys to Linux hosts only (os: linux)");
      } else {
        fail(m, "os", fmt::format("{} is not supported: use linux", quote(*os)));
      }
    }
    if (const field* f = fs.given("files")) parse_files(*f);
    if (const field* f = fs.given("file_exists_behavior")) {
      if (auto s = scalar(*f)) {
        if (auto b = parse_file_exists_behavior(*s)) {
          spec_.file_exists = b;
        } else {
          fail(f->mark(), f->path,
               fmt::format("{} is not valid: use DISALLOW, OVERWRITE or RETAIN (upper case)",
                           quote(*s)));
        }
      }
    }
    if (const field* f = fs.given("permissions")) parse_permissions(*f);
    if (const field* f = fs.given("hooks")) parse_hooks(*f);
  }

  void parse_files(const field& list) {
    if (!expect_list(list)) return;
    for (std::size_t i = 0; i < list.value.size(); ++i) {
      const YAML::Node node = list.value[i];
      const std::string path = item(list.path, i);
      if (!expect_map(node, node.Mark(), path)) continue;
      const fields fs = read_map(node, path, {"source", "destination"});
      file_mapping m;
      m.line = line_of(node.Mark());
      bool good = true;
      if (auto src = required(fs, "source", node.Mark(), path)) {
        const field& f = *fs.find("source");
        if (src->empty()) {
          fail(f.mark(), f.path, "must not be empty (use / for the whole revision)");
          good = false;
        } else if (*src != "/" && src->front() == '/') {
          fail(f.mark(), f.path,
               fmt::format("{} is absolute: a source is relative to the revision root (/ alone "
                           "means the whole revision)",
                           quote(*src)));
          good = false;
        } else if (has_dotdot_component(*src)) {
          fail(f.mark(), f.path,
               fmt::format("{} contains \"..\": a source must stay inside the revision",
                           quote(*src)));
          good = false;
        }
        m.source = *src;
      } else {
        good = false;
      }
      if (auto dst = required(fs, "destination", node.Mark(), path)) {
        const field& f = *fs.find("destination");
        if (dst->empty() || dst->front() != '/') {
          fail(
              f.mark(), f.path,
              fmt::format("{} is not an absolute path (a destination starts with /)", quote(*dst)));
          good = false;
        } else if (has_dotdot_component(*dst)) {
          fail(f.mark(), f.path,
               fmt::format("{} contains \"..\": write the destination without it", quote(*dst)));
          good = false;
        }
        m.destination = *dst;
      } else {
        good = false;
      }
      if (good) spec_.files.push_back(std::move(m));
    }
  }

  // A glob over immediate children: non-empty, no "/".
  bool check_glob(const std::string& glob, const YAML::Mark& mark, const std::string& path) {
    if (glob.empty()) {
      fail(mark, path, "must not be empty");
      return false;
    }
    if (glob.find('/') != std::string::npos) {
      fail(mark, path,
           fmt::format("{} contains \"/\": a pattern matches names of immediate children of the "
                       "object (or use ** for everything below it)",
                       quote(glob)));
      return false;
    }
    return true;
  }

  void parse_permissions(const field& list) {
    if (!expect_list(list)) return;
    for (std::size_t i = 0; i < list.value.size(); ++i) {
      const YAML::Node node = list.value[i];
      const std::string path = item(list.path, i);
      if (!expect_map(node, node.Mark(), path)) continue;
      const std::size_t problems_before = problems_.size();
      const fields fs = read_map(
          node, path,
          {"object", "pattern", "except", "owner", "group", "mode", "acls", "context", "type"});
      permission_rule r;
      r.line = line_of(node.Mark());
      if (auto obj = required(fs, "object", node.Mark(), path)) {
        const field& f = *fs.find("object");
        if (obj->empty() || obj->front() != '/') {
          fail(f.mark(), f.path,
               fmt::format("{} is not an absolute path (an object is an installed path on the "
                           "host)",
                           quote(*obj)));
        } else if (has_dotdot_component(*obj)) {
          fail(f.mark(), f.path,
               fmt::format("{} contains \"..\": write the object without it", quote(*obj)));
        }
        r.object = *obj;
      }
      if (const field* f = fs.given("pattern")) {
        if (auto p = scalar(*f)) {
          if (*p == "**" || check_glob(*p, f->mark(), f->path)) r.pattern = *p;
        }
      }
      if (const field* f = fs.given("except")) {
        const auto globs = scalar_list(*f);
        for (std::size_t j = 0; j < globs.size(); ++j) {
          if (check_glob(globs[j].first, globs[j].second, item(f->path, j))) {
            r.except.push_back(globs[j].first);
          }
        }
      }
      for (std::string_view key : {"owner", "group"}) {
        const field* f = fs.given(key);
        if (f == nullptr) continue;
        if (auto s = scalar(*f)) {
          if (trim(*s).empty()) {
            fail(f->mark(), f->path, "must not be empty (omit the key to leave it unchanged)");
          } else {
            (key == "owner" ? r.owner : r.group) = *s;
          }
        }
      }
      if (const field* f = fs.given("mode")) {
        if (auto s = scalar(*f)) {
          if (auto mode = parse_mode(*s)) {
            r.mode = mode;
          } else {
            fail(f->mark(), f->path,
                 fmt::format("{} is not an octal mode: use 1 to 4 octal digits such as 644, 0755 "
                             "or 4755",
                             quote(*s)));
          }
        }
      }
      if (const field* f = fs.given("acls")) {
        const auto aces = scalar_list(*f);
        for (std::size_t j = 0; j < aces.size(); ++j) {
          const std::string why = check_ace(aces[j].first);
          if (why.empty()) {
            r.acls.push_back(aces[j].first);
          } else {
            fail(aces[j].second, item(f->path, j),
                 fmt::format("{} is not a valid ACL entry: {}", quote(aces[j].first), why));
          }
        }
      }
      if (const field* f = fs.given("context")) r.context = parse_context(*f);
      if (const field* f = fs.given("type")) {
        const auto types = scalar_list(*f);
        if (f->value.IsSequence() && f->value.size() == 0) {
          fail(f->mark(), f->path,
               "empty list: give file, directory or both (or omit the key for both)");
        }
        for (std::size_t j = 0; j < types.size(); ++j) {
          std::optional<object_type> t;
          if (types[j].first == "file") t = object_type::file;
          if (types[j].first == "directory") t = object_type::directory;
          if (!t) {
            fail(types[j].second, item(f->path, j),
                 fmt::format("{} is not an object type: use file or directory",
                             quote(types[j].first)));
          } else if (std::find(r.types.begin(), r.types.end(), *t) == r.types.end()) {
            r.types.push_back(*t);
          }
        }
      }
      if (problems_.size() == problems_before) spec_.permissions.push_back(std::move(r));
    }
  }

  std::optional<selinux_context> parse_context(const field& f) {
    if (!expect_map(f.value, f.mark(), f.path)) return std::nullopt;
    const fields fs = read_map(f.value, f.path, {"name", "user", "type", "range"});
    selinux_context c;
    const field* name = fs.given("name");
    const field* user = fs.given("user");
    if (name != nullptr && user != nullptr) {
      fail(user->mark(), user->path,
           fmt::format("give the SELinux user once, as user or as name (name is on line {})",
                       line_of(name->mark())));
    } else if (const field* u = user != nullptr ? user : name) {
      if (auto s = scalar(*u)) {
        if (s->empty()) {
          fail(u->mark(), u->path, "must not be empty (omit the key to leave it unchanged)");
        }
        c.user = *s;
      }
    }
    if (auto t = required(fs, "type", f.value.Mark(), f.path, "(the SELinux type)")) {
      if (t->empty()) fail(fs.find("type")->mark(), child(f.path, "type"), "must not be empty");
      c.type = *t;
    }
    if (const field* r = fs.given("range")) {
      if (auto s = scalar(*r)) {
        const std::string why = check_range(*s);
        if (!why.empty()) {
          fail(r->mark(), r->path,
               fmt::format("{} is not a valid SELinux range: {}", quote(*s), why));
        }
        c.range = *s;
      }
    }
    return c;
  }

  void parse_hooks(const field& hooks) {
    if (!expect_map(hooks.value, hooks.mark(), hooks.path)) return;
    const fields events = read_map(hooks.value, hooks.path, {});
    for (const auto& [name, f] : events.entries()) {
      const auto event = parse_lifecycle_event(name);
      if (!event) {
        fail(f.mark(), f.path, unknown_event_message(name));
        continue;
      }
      if (is_reserved(*event)) {
        fail(f.mark(), f.path,
             fmt::format("{} is run by the agent itself and takes no hooks (use {})", name,
                         hookable_events()));
        continue;
      }
      if (f.value.IsNull()) continue;  // "AfterInstall:" with every script commented out
      if (!expect_list(f)) continue;
      std::vector<hook_script> scripts;
      bool good = true;
      std::chrono::seconds total{0};
      for (std::size_t i = 0; i < f.value.size(); ++i) {
        auto s = parse_script(f.value[i], item(f.path, i));
        if (!s) {
          good = false;
          continue;
        }
        // Only timeouts written in the appspec count: CodeDeploy's agent gives
        // each script without one its own 3600 s, and revisions with several
        // such scripts in one event are common (docs/appspec.md).
        if (s->timeout_given) total += s->script.timeout;
        scripts.push_back(std::move(s->script));
      }
      if (good && total > max_event_timeout) {
        fail(f.mark(), f.path,
             fmt::format("the scripts' timeouts add up to {} s, over the {} s one event may take",
                         total.count(), max_event_timeout.count()));
        good = false;
      }
      if (good && !scripts.empty()) spec_.hooks[*event] = std::move(scripts);
    }
  }

  struct parsed_script {
    hook_script script;
    bool timeout_given = false;  // the appspec states the timeout
  };

  std::optional<parsed_script> parse_script(const YAML::Node& node, const std::string& path) {
    if (!expect_map(node, node.Mark(), path)) return std::nullopt;
    const std::size_t problems_before = problems_.size();
    const fields fs = read_map(node, path, {"location", "timeout", "runas"});
    hook_script s;
    bool timeout_given = false;
    s.line = line_of(node.Mark());
    if (auto loc =
            required(fs, "location", node.Mark(), path, "(the script's path in the revision)")) {
      const field& f = *fs.find("location");
      // As CodeDeploy's agent: surrounding spaces are ignored and the location
      // is joined to the revision root, so a leading "/" means the root too.
      std::string_view l = trim(*loc);
      while (!l.empty() && l.front() == '/') l.remove_prefix(1);
      if (l.empty()) {
        fail(f.mark(), f.path, fmt::format("{} names no script", quote(*loc)));
      } else if (has_dotdot_component(l)) {
        fail(f.mark(), f.path,
             fmt::format("{} contains \"..\": a script must be inside the revision", quote(*loc)));
      }
      s.location = std::string(l);
    }
    if (const field* f = fs.given("timeout")) {
      if (auto t = scalar(*f)) {
        if (!all_digits(*t) || t->find_first_not_of('0') == std::string::npos) {
          fail(f->mark(), f->path,
               fmt::format("{} is not a positive whole number of seconds", quote(*t)));
        } else {
          // Leading zeros are fine ("0300"); long numbers are over the limit.
          const std::string_view digits = std::string_view(*t).substr(t->find_first_not_of('0'));
          long long seconds = max_hook_timeout.count() + 1;
          if (digits.size() <= 9) {
            (void)std::from_chars(digits.data(), digits.data() + digits.size(), seconds);
          }
          if (seconds > max_hook_timeout.count()) {
            fail(f->mark(), f->path,
                 fmt::format("{} is over the {} s maximum", quote(*t), max_hook_timeout.count()));
          } else {
            s.timeout = std::chrono::seconds(seconds);
            timeout_given = true;
          }
        }
      }
    }
    if (const field* f = fs.given("runas")) {
      if (auto r = scalar(*f)) {
        const std::string_view user = trim(*r);
        if (user.empty()) {
          fail(f->mark(), f->path, "must not be empty (omit runas to run as the agent's user)");
        }
        s.runas = std::string(user);
      }
    }
    if (problems_.size() != problems_before) return std::nullopt;
    return parsed_script{std::move(s), timeout_given};
  }

  static std::string hookable_events() {
    std::string out;
    for (lifecycle_event e : lifecycle_order()) {
      if (is_reserved(e)) continue;
      if (!out.empty()) out += ", ";
      out += to_string(e);
    }
    return out;
  }

  static std::string unknown_event_message(const std::string& name) {
    for (lifecycle_event e : lifecycle_order()) {
      if (equals_ignoring_case(name, to_string(e))) {
        return fmt::format(
            "unknown lifecycle event {} (names are case-sensitive: did you mean {}?)", quote(name),
            to_string(e));
      }
    }
    return fmt::format("unknown lifecycle event {} (hooks may be given for {})", quote(name),
                       hookable_events());
  }

  std::string file_name_;
  appspec spec_;
  std::vector<problem> problems_;
};

// --- the revision on disk -------------------------------------------------------

// True when canonical path `p` is `root` or below it (both canonical).
bool is_within(const fs::path& root, const fs::path& p) {
  auto pi = p.begin();
  for (auto ri = root.begin(); ri != root.end(); ++ri, ++pi) {
    if (pi == p.end() || *pi != *ri) return false;
  }
  return true;
}

struct located_appspec {
  fs::path path;
  std::string name;
};

result<located_appspec> find_appspec(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return make_error(errc::appspec_missing,
                      fmt::format("{}: not a directory, so it has no appspec.yml", root.string()));
  }
  for (const char* name : {"appspec.yml", "appspec.yaml"}) {
    const fs::path p = root / name;
    const fs::file_status st = fs::symlink_status(p, ec);
    if (!fs::exists(st)) continue;
    if (fs::is_symlink(st)) {
      const fs::path target = fs::canonical(p, ec);
      const fs::path canon_root = fs::canonical(root, ec);
      if (target.empty() || canon_root.empty() || !is_within(canon_root, target) ||
          !fs::is_regular_file(target, ec)) {
        return make_error(errc::appspec_invalid,
                          fmt::format("{}: a symbolic link that does not lead to a regular file "
                                      "inside the revision ({})",
                                      name, p.string()));
      }
    } else if (!fs::is_regular_file(st)) {
      return make_error(errc::appspec_invalid,
                        fmt::format("{}: not a regular file ({})", name, p.string()));
    }
    return located_appspec{p, name};
  }
  return make_error(errc::appspec_missing,
                    fmt::format("no appspec.yml or appspec.yaml at the root of the revision ({})",
                                root.string()));
}

result<std::string> read_appspec(const located_appspec& a) {
  std::error_code ec;
  const auto size = fs::file_size(a.path, ec);
  if (ec) {
    return make_error(errc::io_error,
                      fmt::format("{}: cannot read {}: {}", a.name, a.path.string(), ec.message()));
  }
  if (size > max_appspec_bytes) {
    return make_error(errc::appspec_invalid,
                      fmt::format("{}: the file is {} bytes, over the {} byte limit", a.name, size,
                                  max_appspec_bytes));
  }
  std::ifstream in(a.path, std::ios::binary);
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (!in && !in.eof()) {
    return make_error(errc::io_error, fmt::format("{}: cannot read {}", a.name, a.path.string()));
  }
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

std::string located_message(const appspec& spec, int line, const std::string& path,
                            const std::string& message) {
  return fmt::format("{}:{}: {}: {}", spec.file_name, line, path, message);
}

// Checks the spec's scripts and sources against the revision on disk, adding a
// problem per failure; stops after the first when `first_only`.
void check_revision(const appspec& spec, const fs::path& root, bool first_only,
                    std::vector<error>& out) {
  std::error_code ec;
  const fs::path canon_root = fs::canonical(root, ec);
  if (ec) {
    out.push_back(make_error(errc::io_error, fmt::format("{}: cannot resolve the revision root: {}",
                                                         root.string(), ec.message())));
    return;
  }
  for (const auto& [event, scripts] : spec.hooks) {
    for (std::size_t i = 0; i < scripts.size(); ++i) {
      if (first_only && !out.empty()) return;
      const hook_script& s = scripts[i];
      const std::string path = fmt::format("hooks.{}[{}].location", to_string(event), i);
      const auto missing = [&](const std::string& why) {
        out.push_back(
            make_error(errc::script_missing,
                       located_message(spec, s.line, path, quote(s.location) + " " + why)));
      };
      const fs::path p = root / s.location;
      if (!fs::exists(fs::symlink_status(p, ec))) {
        missing("does not exist in the revision");
        continue;
      }
      const fs::path target = fs::canonical(p, ec);
      if (ec) {
        missing(fmt::format("cannot be resolved (a dangling symbolic link?): {}", ec.message()));
        continue;
      }
      if (!is_within(canon_root, target)) {
        missing(fmt::format("leads outside the revision through a symbolic link (to {})",
                            target.string()));
        continue;
      }
      const fs::file_status st = fs::status(target, ec);
      if (!fs::is_regular_file(st)) {
        missing(fs::is_directory(st) ? "is a directory, not a script" : "is not a regular file");
        continue;
      }
      constexpr auto any_exec =
          fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;
      if ((st.permissions() & any_exec) == fs::perms::none) {
        out.push_back(make_error(
            errc::script_not_executable,
            located_message(spec, s.line, path,
                            quote(s.location) +
                                " is not executable: set its execute bit (chmod +x) before "
                                "bundling the revision")));
      }
    }
  }
  for (std::size_t i = 0; i < spec.files.size(); ++i) {
    if (first_only && !out.empty()) return;
    const file_mapping& m = spec.files[i];
    if (m.source == "/") continue;
    if (!fs::exists(fs::symlink_status(root / m.source, ec))) {
      out.push_back(
          make_error(errc::appspec_invalid,
                     located_message(spec, m.line, fmt::format("files[{}].source", i),
                                     quote(m.source) + " does not exist in the revision")));
    }
  }
}

// Shared by load_appspec and validate_revision_dir.
validation_report examine(const fs::path& root, bool first_only) {
  validation_report report;
  auto located = find_appspec(root);
  if (!located) {
    report.problems.push_back(std::move(located).error());
    return report;
  }
  auto text = read_appspec(located.value());
  if (!text) {
    report.problems.push_back(std::move(text).error());
    return report;
  }
  parser p(located.value().name);
  p.parse(text.value());
  if (!p.problems().empty()) {
    for (problem& pr : p.problems()) {
      report.problems.push_back(std::move(pr.err));
      if (first_only) break;
    }
    return report;
  }
  report.spec = std::move(p.spec());
  check_revision(*report.spec, root, first_only, report.problems);
  return report;
}

}  // namespace

std::optional<file_exists_behavior> parse_file_exists_behavior(std::string_view text) {
  if (text == "DISALLOW") return file_exists_behavior::disallow;
  if (text == "OVERWRITE") return file_exists_behavior::overwrite;
  if (text == "RETAIN") return file_exists_behavior::retain;
  return std::nullopt;
}

std::string_view to_string(file_exists_behavior b) {
  switch (b) {
    case file_exists_behavior::disallow:
      return "DISALLOW";
    case file_exists_behavior::overwrite:
      return "OVERWRITE";
    case file_exists_behavior::retain:
      return "RETAIN";
  }
  return "DISALLOW";
}

std::string_view to_string(object_type t) {
  return t == object_type::directory ? "directory" : "file";
}

result<appspec> parse_appspec(std::string_view yaml_text, std::string_view file_name) {
  parser p(file_name);
  p.parse(yaml_text);
  if (!p.problems().empty()) return std::move(p.problems().front().err);
  return std::move(p.spec());
}

result<appspec> load_appspec(const fs::path& revision_root) {
  validation_report report = examine(revision_root, /*first_only=*/true);
  if (!report.problems.empty()) return std::move(report.problems.front());
  return std::move(*report.spec);
}

validation_report validate_revision_dir(const fs::path& revision_root) {
  return examine(revision_root, /*first_only=*/false);
}

}  // namespace meshdeploy::agent

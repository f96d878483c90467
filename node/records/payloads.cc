#include "node/records/payloads.h"

#include "node/records/errc.h"

#include <fmt/format.h>
#include <msgpack.hpp>

#include <cstring>
#include <exception>
#include <initializer_list>
#include <limits>
#include <set>
#include <string_view>
#include <type_traits>
#include <utility>

namespace meshdeploy::records {
namespace {

// Limits (docs/records.md, "Payload limits").
constexpr std::size_t max_name_bytes = 128;        // app, group, host, config, ids, operator name
constexpr std::size_t max_text_bytes = 64 * 1024;  // free text (messages, reasons, patterns)
constexpr std::size_t max_log_tail_bytes = 16 * 1024;
constexpr std::size_t max_tag_value_bytes = 256;
constexpr std::size_t max_targets = 10'000;
constexpr std::size_t max_allow = 256;
constexpr std::size_t max_events = 64;
constexpr std::size_t max_tag_sets = 32;
constexpr std::size_t max_tags_per_set = 32;

using packer = msgpack::packer<msgpack::sbuffer>;

// ---- encoding -------------------------------------------------------------------------------

void pack_key(packer& p, const public_key& k) {
  p.pack_bin(static_cast<std::uint32_t>(k.size()));
  p.pack_bin_body(reinterpret_cast<const char*>(k.data()), static_cast<std::uint32_t>(k.size()));
}

void put(packer& p, const grant_payload& g) {
  p.pack_array(4);
  p.pack(g.operator_name);
  pack_key(p, g.operator_key);
  p.pack(g.allow);
  p.pack(g.revoked);
}

void put(packer& p, const application_payload& a) {
  p.pack_array(2);
  p.pack(a.name);
  p.pack(a.deleted);
}

void put(packer& p, const group_payload& g) {
  p.pack_array(6);
  p.pack(g.app);
  p.pack(g.name);
  p.pack_array(static_cast<std::uint32_t>(g.selector.size()));
  for (const auto& set : g.selector) {
    p.pack_map(static_cast<std::uint32_t>(set.size()));
    for (const auto& [k, v] : set) {
      p.pack(k);
      p.pack(v);
    }
  }
  p.pack(g.config);
  p.pack(g.auto_rollback);
  p.pack(g.deleted);
}

void put(packer& p, const config_payload& c) {
  p.pack_array(4);
  p.pack(c.name);
  p.pack(c.min_healthy_type);
  p.pack(c.value);
  p.pack(c.deleted);
}

void put(packer& p, const revision_payload& r) {
  p.pack_array(6);
  p.pack(r.app);
  p.pack(r.id);
  p.pack(r.format);
  p.pack(r.size);
  p.pack(r.manifest);
  p.pack(r.origin);
}

void put(packer& p, const intent_payload& i) {
  p.pack_array(i.electorate.empty() ? 12 : 13);
  p.pack(i.deployment_id);
  p.pack(i.app);
  p.pack(i.group);
  p.pack(i.revision);
  p.pack(i.config);
  p.pack(i.targets);
  p.pack(i.max_out_of_service);
  p.pack(i.failure_budget);
  p.pack(i.rollback_of);
  p.pack(i.ignore_stop_failures);
  p.pack(i.file_exists_behavior);
  p.pack(i.creator);
  if (!i.electorate.empty()) p.pack(i.electorate);
}

void put(packer& p, const approval_payload& a) {
  p.pack_array(5);
  p.pack(a.app);
  p.pack(a.group);
  p.pack(a.parent);
  p.pack(a.child);
  p.pack(a.host);
}

void put(packer& p, const progress_payload& g) {
  p.pack_array(4);
  p.pack(g.deployment_id);
  p.pack(g.host);
  p.pack(g.phase);
  p.pack_array(static_cast<std::uint32_t>(g.events.size()));
  for (const auto& e : g.events) {
    p.pack_array(8);
    p.pack(e.name);
    p.pack(e.status);
    p.pack(e.start_ms);
    p.pack(e.end_ms);
    p.pack(e.error_code);
    p.pack(e.script);
    p.pack(e.message);
    p.pack(e.log_tail);
  }
}

void put(packer& p, const stop_payload& s) {
  p.pack_array(4);
  p.pack(s.deployment_id);
  p.pack(s.app);
  p.pack(s.group);
  p.pack(s.reason);
}

void put(packer& p, const exclude_payload& x) {
  p.pack_array(4);
  p.pack(x.deployment_id);
  p.pack(x.app);
  p.pack(x.group);
  p.pack(x.host);
}

void put(packer& p, const host_payload& h) {
  p.pack_array(2);
  p.pack(h.name);
  pack_key(p, h.key);
}

// ---- decoding -------------------------------------------------------------------------------

// Walks the fields of one msgpack array (a payload or a nested struct) in declaration order.
// Every accessor checks the msgpack type strictly (no int<->bool, no str<->bin coercion) and
// the field's limit; errors read "<type> payload: field <prefix><name> ...".
class fields {
 public:
  // REQUIRES: o.type == ARRAY. `o` must outlive this object.
  fields(std::string_view type, std::string prefix, const msgpack::object& o)
      : type_(type), prefix_(std::move(prefix)), o_(o) {}

  [[nodiscard]] error fail(errc e, std::string_view field, std::string_view what) const {
    return make_error(e, fmt::format("{} payload: field {}{} {}", type_, prefix_, field, what));
  }

  // True when the array has another element (for optional trailing fields).
  bool has_next() const { return next_ < o_.via.array.size; }

  // The next element, or malformed when the array ended early.
  result<const msgpack::object*> next(std::string_view field) {
    if (next_ >= o_.via.array.size) return fail(errc::malformed, field, "is missing");
    return &o_.via.array.ptr[next_++];
  }

  // A free-text string of at most `limit` bytes (may be empty).
  result<std::string> text(std::string_view field, std::size_t limit = max_text_bytes) {
    MESH_TRY(const msgpack::object* o, next(field));
    return as_text(*o, field, limit);
  }

  // An identifier used in record keys and grant resources: 1..128 bytes, no '/' (it separates
  // key parts, so "a/b"+"c" and "a"+"b/c" cannot collide) and no control characters.
  // With allow_empty, "" is accepted too (e.g. the first deployment's parent).
  result<std::string> name(std::string_view field, bool allow_empty = false) {
    MESH_TRY(const msgpack::object* o, next(field));
    return as_name(*o, field, allow_empty);
  }

  result<bool> boolean(std::string_view field) {
    MESH_TRY(const msgpack::object* o, next(field));
    if (o->type != msgpack::type::BOOLEAN) return fail(errc::malformed, field, "is not a boolean");
    return o->via.boolean;
  }

  template <class U>
  result<U> unsigned_int(std::string_view field) {
    static_assert(std::is_unsigned_v<U>);
    MESH_TRY(const msgpack::object* o, next(field));
    if (o->type != msgpack::type::POSITIVE_INTEGER) {
      return fail(errc::malformed, field, "is not a non-negative integer");
    }
    if (o->via.u64 > std::numeric_limits<U>::max()) {
      return fail(errc::malformed, field,
                  fmt::format("is {}, out of range (max {})", o->via.u64,
                              static_cast<std::uint64_t>(std::numeric_limits<U>::max())));
    }
    return static_cast<U>(o->via.u64);
  }

  result<std::int64_t> signed_int(std::string_view field) {
    MESH_TRY(const msgpack::object* o, next(field));
    if (o->type == msgpack::type::NEGATIVE_INTEGER) return o->via.i64;
    if (o->type != msgpack::type::POSITIVE_INTEGER) {
      return fail(errc::malformed, field, "is not an integer");
    }
    if (o->via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return fail(errc::malformed, field, "is out of the int64 range");
    }
    return static_cast<std::int64_t>(o->via.u64);
  }

  result<public_key> key(std::string_view field) {
    MESH_TRY(const msgpack::object* o, next(field));
    if (o->type != msgpack::type::BIN || o->via.bin.size != public_key_bytes) {
      return fail(errc::malformed, field, fmt::format("is not {} bytes of bin", public_key_bytes));
    }
    public_key k{};
    std::memcpy(k.data(), o->via.bin.ptr, k.size());
    return k;
  }

  // An array field with at most `limit` elements.
  result<const msgpack::object*> array(std::string_view field, std::size_t limit) {
    MESH_TRY(const msgpack::object* o, next(field));
    if (o->type != msgpack::type::ARRAY) return fail(errc::malformed, field, "is not an array");
    if (o->via.array.size > limit) {
      return fail(errc::too_large, field,
                  fmt::format("has {} elements, limit {}", o->via.array.size, limit));
    }
    return o;
  }

  // A list of strings; each element checked as a name (names=true) or as text.
  result<std::vector<std::string>> strings(std::string_view field, std::size_t limit, bool names) {
    MESH_TRY(const msgpack::object* a, array(field, limit));
    std::vector<std::string> out;
    out.reserve(a->via.array.size);
    for (std::uint32_t i = 0; i < a->via.array.size; ++i) {
      const std::string item = fmt::format("{}[{}]", field, i);
      if (names) {
        MESH_TRY(auto s, as_name(a->via.array.ptr[i], item, false));
        out.push_back(std::move(s));
      } else {
        MESH_TRY(auto s, as_text(a->via.array.ptr[i], item, max_text_bytes));
        out.push_back(std::move(s));
      }
    }
    return out;
  }

  result<std::string> as_text(const msgpack::object& o, std::string_view field,
                              std::size_t limit) const {
    if (o.type != msgpack::type::STR) return fail(errc::malformed, field, "is not a string");
    if (o.via.str.size > limit) {
      return fail(errc::too_large, field,
                  fmt::format("is {} bytes, limit {}", o.via.str.size, limit));
    }
    return std::string(o.via.str.ptr, o.via.str.size);
  }

  result<std::string> as_name(const msgpack::object& o, std::string_view field,
                              bool allow_empty) const {
    MESH_TRY(auto s, as_text(o, field, max_name_bytes));
    if (s.empty() && !allow_empty) return fail(errc::schema, field, "is empty");
    for (char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '/') return fail(errc::schema, field, "contains '/'");
      if (u < 0x20 || u == 0x7f) return fail(errc::schema, field, "contains a control character");
    }
    return s;
  }

  [[nodiscard]] std::string_view type() const { return type_; }
  [[nodiscard]] const std::string& prefix() const { return prefix_; }

 private:
  std::string_view type_;
  std::string prefix_;
  const msgpack::object& o_;
  std::uint32_t next_ = 0;
};

result<void> one_of(const fields& f, std::string_view field, const std::string& value,
                    std::initializer_list<std::string_view> allowed) {
  for (std::string_view a : allowed) {
    if (value == a) return ok();
  }
  return f.fail(errc::schema, field, fmt::format("has unknown value \"{}\"", value));
}

result<payload> get_grant(fields& f) {
  grant_payload g;
  MESH_TRY(g.operator_name, f.name("operator_name"));
  MESH_TRY(g.operator_key, f.key("operator_key"));
  MESH_TRY(g.allow, f.strings("allow", max_allow, false));
  MESH_TRY(g.revoked, f.boolean("revoked"));
  return payload{std::move(g)};
}

result<payload> get_application(fields& f) {
  application_payload a;
  MESH_TRY(a.name, f.name("name"));
  MESH_TRY(a.deleted, f.boolean("deleted"));
  return payload{std::move(a)};
}

result<tag_selector> get_selector(fields& f) {
  MESH_TRY(const msgpack::object* a, f.array("selector", max_tag_sets));
  tag_selector out;
  for (std::uint32_t i = 0; i < a->via.array.size; ++i) {
    const msgpack::object& m = a->via.array.ptr[i];
    const std::string set_field = fmt::format("selector[{}]", i);
    if (m.type != msgpack::type::MAP) return f.fail(errc::malformed, set_field, "is not a map");
    if (m.via.map.size > max_tags_per_set) {
      return f.fail(errc::too_large, set_field,
                    fmt::format("has {} tags, limit {}", m.via.map.size, max_tags_per_set));
    }
    std::map<std::string, std::string> set;
    for (std::uint32_t j = 0; j < m.via.map.size; ++j) {
      const msgpack::object_kv& kv = m.via.map.ptr[j];
      MESH_TRY(auto k, f.as_text(kv.key, fmt::format("{} key {}", set_field, j), max_name_bytes));
      if (k.empty()) return f.fail(errc::schema, set_field, "has an empty tag key");
      MESH_TRY(auto v, f.as_text(kv.val, fmt::format("{}[{}]", set_field, k), max_tag_value_bytes));
      if (!set.emplace(k, std::move(v)).second) {
        return f.fail(errc::malformed, set_field, fmt::format("repeats tag key \"{}\"", k));
      }
    }
    out.push_back(std::move(set));
  }
  return out;
}

result<payload> get_group(fields& f) {
  group_payload g;
  MESH_TRY(g.app, f.name("app"));
  MESH_TRY(g.name, f.name("name"));
  MESH_TRY(g.selector, get_selector(f));
  MESH_TRY(g.config, f.name("config"));
  MESH_TRY(g.auto_rollback, f.boolean("auto_rollback"));
  MESH_TRY(g.deleted, f.boolean("deleted"));
  return payload{std::move(g)};
}

result<payload> get_config(fields& f) {
  config_payload c;
  MESH_TRY(c.name, f.name("name"));
  MESH_TRY(c.min_healthy_type, f.unsigned_int<std::uint8_t>("min_healthy_type"));
  if (c.min_healthy_type > 2) {
    return f.fail(
        errc::schema, "min_healthy_type",
        fmt::format("is {} (0 host_count, 1 fleet_percent, 2 one_at_a_time)", c.min_healthy_type));
  }
  MESH_TRY(c.value, f.unsigned_int<std::uint32_t>("value"));
  MESH_TRY(c.deleted, f.boolean("deleted"));
  return payload{std::move(c)};
}

result<payload> get_revision(fields& f) {
  revision_payload r;
  MESH_TRY(r.app, f.name("app"));
  MESH_TRY(r.id, f.name("id"));
  MESH_TRY(r.format, f.text("format", max_name_bytes));
  MESH_CHECK(one_of(f, "format", r.format, {"zip", "tar", "tgz"}));
  MESH_TRY(r.size, f.unsigned_int<std::uint64_t>("size"));
  MESH_TRY(r.manifest, f.text("manifest", max_name_bytes));
  MESH_TRY(r.origin, f.name("origin", true));
  return payload{std::move(r)};
}

result<payload> get_intent(fields& f) {
  intent_payload i;
  MESH_TRY(i.deployment_id, f.name("deployment_id"));
  MESH_TRY(i.app, f.name("app"));
  MESH_TRY(i.group, f.name("group"));
  MESH_TRY(i.revision, f.name("revision"));
  MESH_TRY(i.config, f.name("config"));
  MESH_TRY(i.targets, f.strings("targets", max_targets, true));
  MESH_TRY(i.max_out_of_service, f.unsigned_int<std::uint32_t>("max_out_of_service"));
  MESH_TRY(i.failure_budget, f.unsigned_int<std::uint32_t>("failure_budget"));
  MESH_TRY(i.rollback_of, f.name("rollback_of", true));
  MESH_TRY(i.ignore_stop_failures, f.boolean("ignore_stop_failures"));
  MESH_TRY(i.file_exists_behavior, f.text("file_exists_behavior", max_name_bytes));
  if (!i.file_exists_behavior.empty()) {
    MESH_CHECK(one_of(f, "file_exists_behavior", i.file_exists_behavior,
                      {"DISALLOW", "OVERWRITE", "RETAIN"}));
  }
  MESH_TRY(i.creator, f.text("creator", max_name_bytes));
  if (f.has_next()) {
    MESH_TRY(i.electorate, f.strings("electorate", max_targets, true));
    if (i.electorate.empty()) {
      // Encoders leave the field out when empty: one payload, one encoding.
      return f.fail(errc::schema, "electorate", "is present but empty");
    }
    const std::set<std::string> targets(i.targets.begin(), i.targets.end());
    std::set<std::string> seen;
    for (const auto& h : i.electorate) {
      if (targets.count(h) != 0) {
        return f.fail(errc::schema, "electorate", fmt::format("names target \"{}\"", h));
      }
      if (!seen.insert(h).second) {
        return f.fail(errc::schema, "electorate", fmt::format("repeats \"{}\"", h));
      }
    }
  }
  return payload{std::move(i)};
}

result<payload> get_approval(fields& f) {
  approval_payload a;
  MESH_TRY(a.app, f.name("app"));
  MESH_TRY(a.group, f.name("group"));
  MESH_TRY(a.parent, f.name("parent", true));
  MESH_TRY(a.child, f.name("child"));
  MESH_TRY(a.host, f.name("host"));
  return payload{std::move(a)};
}

result<event_progress> get_event(const fields& parent, const msgpack::object& o, std::uint32_t i) {
  const std::string at = fmt::format("events[{}]", i);
  if (o.type != msgpack::type::ARRAY) return parent.fail(errc::malformed, at, "is not an array");
  fields f(parent.type(), at + ".", o);
  event_progress e;
  MESH_TRY(e.name, f.name("name"));
  MESH_TRY(e.status, f.text("status", max_name_bytes));
  MESH_CHECK(one_of(f, "status", e.status,
                    {"Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Unknown"}));
  MESH_TRY(e.start_ms, f.signed_int("start_ms"));
  MESH_TRY(e.end_ms, f.signed_int("end_ms"));
  MESH_TRY(e.error_code, f.text("error_code", max_name_bytes));
  MESH_TRY(e.script, f.text("script"));
  MESH_TRY(e.message, f.text("message"));
  MESH_TRY(e.log_tail, f.text("log_tail", max_log_tail_bytes));
  return e;
}

result<payload> get_progress(fields& f) {
  progress_payload g;
  MESH_TRY(g.deployment_id, f.name("deployment_id"));
  MESH_TRY(g.host, f.name("host"));
  MESH_TRY(g.phase, f.text("phase", max_name_bytes));
  MESH_CHECK(one_of(f, "phase", g.phase, {"pending", "entered", "resolved", "failed", "skipped"}));
  MESH_TRY(const msgpack::object* events, f.array("events", max_events));
  g.events.reserve(events->via.array.size);
  for (std::uint32_t i = 0; i < events->via.array.size; ++i) {
    MESH_TRY(auto e, get_event(f, events->via.array.ptr[i], i));
    g.events.push_back(std::move(e));
  }
  return payload{std::move(g)};
}

result<payload> get_stop(fields& f) {
  stop_payload s;
  MESH_TRY(s.deployment_id, f.name("deployment_id"));
  MESH_TRY(s.app, f.name("app"));
  MESH_TRY(s.group, f.name("group"));
  MESH_TRY(s.reason, f.text("reason"));
  return payload{std::move(s)};
}

result<payload> get_exclude(fields& f) {
  exclude_payload x;
  MESH_TRY(x.deployment_id, f.name("deployment_id"));
  MESH_TRY(x.app, f.name("app"));
  MESH_TRY(x.group, f.name("group"));
  MESH_TRY(x.host, f.name("host"));
  return payload{std::move(x)};
}

result<payload> get_host(fields& f) {
  host_payload h;
  MESH_TRY(h.name, f.name("name"));
  MESH_TRY(h.key, f.key("key"));
  return payload{std::move(h)};
}

result<payload> get_payload(record_type t, fields& f) {
  switch (t) {
    case record_type::grant:
      return get_grant(f);
    case record_type::application:
      return get_application(f);
    case record_type::group:
      return get_group(f);
    case record_type::config:
      return get_config(f);
    case record_type::revision:
      return get_revision(f);
    case record_type::intent:
      return get_intent(f);
    case record_type::approval:
      return get_approval(f);
    case record_type::progress:
      return get_progress(f);
    case record_type::stop:
      return get_stop(f);
    case record_type::exclude:
      return get_exclude(f);
    case record_type::host:
      return get_host(f);
  }
  return make_error(errc::malformed,
                    fmt::format("payload of unknown record type {}", static_cast<int>(t)));
}

}  // namespace

record_type type_of(const payload& p) {
  // The variant's alternatives are declared in record_type order, starting at grant = 1.
  static_assert(std::variant_size_v<payload> == max_record_type);
  static_assert(std::is_same_v<std::variant_alternative_t<0, payload>, grant_payload>);
  static_assert(std::is_same_v<std::variant_alternative_t<10, payload>, host_payload>);
  return static_cast<record_type>(p.index() + 1);
}

std::vector<std::byte> encode_payload(const payload& p) {
  msgpack::sbuffer buf;
  packer pk(buf);
  std::visit([&](const auto& v) { put(pk, v); }, p);
  std::vector<std::byte> out(buf.size());
  std::memcpy(out.data(), buf.data(), buf.size());
  return out;
}

result<payload> decode_payload(record_type t, std::span<const std::byte> bytes) {
  const std::string_view type = to_string(t);
  if (type == "unknown") {
    return make_error(errc::malformed,
                      fmt::format("payload of unknown record type {}", static_cast<int>(t)));
  }
  if (bytes.size() > max_payload_bytes) {
    return make_error(errc::too_large, fmt::format("{} payload: {} bytes, limit {}", type,
                                                   bytes.size(), max_payload_bytes));
  }
  msgpack::object_handle oh;
  try {
    std::size_t off = 0;
    // The parser's own limits bound what a hostile input can make it allocate (each object
    // costs at least one input byte, so at most ~1M objects). The field checks below apply
    // the tighter per-field limits and name the field.
    msgpack::unpack_limit limit(max_targets, max_tags_per_set, max_payload_bytes, public_key_bytes,
                                0, 4);
    oh = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), off, nullptr,
                         nullptr, limit);
    if (off != bytes.size()) {
      return make_error(errc::malformed, fmt::format("{} payload: trailing bytes", type));
    }
  } catch (const msgpack::size_overflow& e) {
    return make_error(errc::too_large,
                      fmt::format("{} payload: over a parser limit ({}; "
                                  "arrays <= {}, maps <= {}, bin <= {}, depth <= 4)",
                                  type, e.what(), max_targets, max_tags_per_set, public_key_bytes));
  } catch (const std::exception& e) {
    return make_error(errc::malformed, fmt::format("{} payload: not msgpack ({})", type, e.what()));
  }
  const msgpack::object& o = oh.get();
  if (o.type != msgpack::type::ARRAY) {
    return make_error(errc::malformed, fmt::format("{} payload: not an array", type));
  }
  fields f(type, "", o);
  return get_payload(t, f);
}

std::string expected_key(const payload& p) {
  struct visitor {
    std::string operator()(const grant_payload& g) const { return to_hex(g.operator_key); }
    std::string operator()(const application_payload& a) const { return a.name; }
    std::string operator()(const group_payload& g) const { return g.app + "/" + g.name; }
    std::string operator()(const config_payload& c) const { return c.name; }
    std::string operator()(const revision_payload& r) const { return r.app + "/" + r.id; }
    std::string operator()(const intent_payload& i) const { return i.deployment_id; }
    std::string operator()(const approval_payload& a) const {
      return a.app + "/" + a.group + "/" + a.parent + "/" + a.host;
    }
    std::string operator()(const progress_payload& g) const {
      return g.deployment_id + "/" + g.host;
    }
    std::string operator()(const stop_payload& s) const { return s.deployment_id; }
    std::string operator()(const exclude_payload& x) const {
      return x.deployment_id + "/" + x.host;
    }
    std::string operator()(const host_payload& h) const { return h.name; }
  };
  return std::visit(visitor{}, p);
}

}  // namespace meshdeploy::records

#include "node/security/verifier.h"

#include "node/records/errc.h"
#include "node/security/identity.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <variant>

namespace meshdeploy::security {
namespace {

using records::errc;

constexpr std::array<std::string_view, 5> known_actions{"define", "deploy", "stop", "read", "*"};

std::string describe(const records::record& r) {
  return fmt::format("record {}/{} v{} by {}", records::to_string(r.type), r.key, r.version,
                     records::to_hex(std::span(r.writer).first(4)));
}

error fail(const records::record& r, errc e, std::string_view what) {
  return make_error(e, fmt::format("{}: {}", describe(r), what));
}

// Glob match where '*' matches any run (possibly empty) of characters. Iterative with one
// backtrack point, so O(|pattern| * |text|) in the worst case and no recursion.
bool glob(std::string_view pattern, std::string_view text) {
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_t = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// The host a host-written record is about.
const std::string* host_of(const records::payload& p) {
  if (const auto* a = std::get_if<records::approval_payload>(&p)) return &a->host;
  if (const auto* g = std::get_if<records::progress_payload>(&p)) return &g->host;
  return nullptr;
}

// The host that signed a node-written intent (creator "host:NAME"), or nullptr.
const records::intent_payload* node_intent(const records::payload& p) {
  const auto* i = std::get_if<records::intent_payload>(&p);
  return i != nullptr && i->creator.starts_with(node_intent_prefix) ? i : nullptr;
}

// Decodes a grant record from the trust source (already verified when stored).
result<records::grant_payload> grant_of(const records::record& r, const records::record& g) {
  auto p = records::decode_payload(records::record_type::grant, g.payload);
  if (!p) {
    return fail(r, errc::schema,
                fmt::format("stored grant v{} does not decode: {}", g.version, p.error().message));
  }
  return std::get<records::grant_payload>(std::move(p).value());
}

// Checks `grant` (version `version`) allows `need` for record `r`.
result<void> check_grant(const records::record& r, const records::grant_payload& grant,
                         std::uint64_t version, const permission& need) {
  if (grant.operator_key != r.writer) {
    return fail(r, errc::schema, fmt::format("grant v{} is for another key", version));
  }
  if (grant.revoked) {
    return fail(r, errc::permission_denied,
                fmt::format("permission denied: operator {} is revoked (grant v{})",
                            grant.operator_name, version));
  }
  if (!grant_allows(grant, need)) {
    return fail(r, errc::permission_denied,
                fmt::format("permission denied: operator {} lacks {} (grant v{})",
                            grant.operator_name, to_string(need), version));
  }
  return ok();
}

}  // namespace

std::string to_string(const permission& p) { return p.action + ":" + p.resource; }

std::optional<permission> required_permission(const records::payload& p) {
  struct visitor {
    std::optional<permission> operator()(const records::application_payload& a) const {
      return permission{"define", "app/" + a.name};
    }
    std::optional<permission> operator()(const records::group_payload& g) const {
      return permission{"define", "app/" + g.app + "/" + g.name};
    }
    std::optional<permission> operator()(const records::config_payload& c) const {
      return permission{"define", "config/" + c.name};
    }
    std::optional<permission> operator()(const records::revision_payload& r) const {
      return permission{"define", "app/" + r.app};
    }
    std::optional<permission> operator()(const records::intent_payload& i) const {
      return permission{"deploy", "app/" + i.app + "/" + i.group};
    }
    std::optional<permission> operator()(const records::stop_payload& s) const {
      return permission{"stop", "app/" + s.app + "/" + s.group};
    }
    std::optional<permission> operator()(const records::exclude_payload& x) const {
      return permission{"stop", "app/" + x.app + "/" + x.group};
    }
    std::optional<permission> operator()(const records::grant_payload&) const {
      return std::nullopt;
    }
    std::optional<permission> operator()(const records::approval_payload&) const {
      return std::nullopt;
    }
    std::optional<permission> operator()(const records::progress_payload&) const {
      return std::nullopt;
    }
    std::optional<permission> operator()(const records::host_payload&) const {
      return std::nullopt;
    }
  };
  return std::visit(visitor{}, p);
}

bool pattern_matches(std::string_view pattern, std::string_view action, std::string_view resource) {
  const std::size_t colon = pattern.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view pa = pattern.substr(0, colon);
  const std::string_view pr = pattern.substr(colon + 1);
  if (pa != "*" && pa != action) return false;
  return glob(pr, resource);
}

bool grant_allows(const records::grant_payload& g, const permission& p) {
  if (g.revoked) return false;
  for (const std::string& pattern : g.allow) {
    if (pattern_matches(pattern, p.action, p.resource)) return true;
  }
  return false;
}

result<void> validate_pattern(std::string_view pattern) {
  auto bad = [&](std::string_view why) {
    return make_error(errc::schema, fmt::format("grant pattern \"{}\": {}", pattern, why));
  };
  const std::size_t colon = pattern.find(':');
  if (colon == std::string_view::npos) return bad("expected ACTION:RESOURCE");
  const std::string_view action = pattern.substr(0, colon);
  const std::string_view resource = pattern.substr(colon + 1);
  bool known = false;
  for (std::string_view a : known_actions) known = known || a == action;
  if (!known) return bad("unknown action (define, deploy, stop, read or *)");
  if (resource.empty()) return bad("empty resource");
  for (char c : resource) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return bad("control character in the resource");
  }
  // Resources are always app/... or config/...; a pattern that cannot match one is a typo
  // that would silently grant nothing ("deploy:web/prod").
  const std::string_view literal = resource.substr(0, resource.find('*'));
  bool can_match = false;
  for (std::string_view kind : {std::string_view{"app/"}, std::string_view{"config/"}}) {
    const bool has_wildcard = literal.size() < resource.size();
    if (literal.starts_with(kind) || (has_wildcard && kind.starts_with(literal))) {
      can_match = true;
    }
  }
  if (!can_match) return bad("resource must start with app/, config/ or *");
  return ok();
}

result<records::payload> verify(const records::record& r, const records::trust_source& trust,
                                const records::public_key& admin) {
  if (!signature_valid(r)) return fail(r, errc::bad_signature, "bad signature");
  auto decoded = records::decode_payload(r.type, r.payload);
  if (!decoded) return decoded.error().with_context(describe(r));
  records::payload p = std::move(decoded).value();
  const std::string key = records::expected_key(p);
  if (r.key != key) {
    return fail(r, errc::schema,
                fmt::format("key does not match the payload (expected \"{}\")", key));
  }
  if (!records::is_versioned(r.type) && r.version != 1) {
    return fail(r, errc::schema, "immutable record with version other than 1");
  }

  if (r.type == records::record_type::grant) {
    if (r.writer != admin) return fail(r, errc::permission_denied, "grant not signed by the admin");
    return p;
  }
  if (const auto* h = std::get_if<records::host_payload>(&p)) {
    if (h->key != r.writer) {
      return fail(r, errc::permission_denied, "host record not signed by the key it binds");
    }
    return p;
  }
  if (const std::string* host = host_of(p)) {
    const auto bound = trust.host_key(*host);
    if (!bound) return fail(r, errc::unknown_writer, fmt::format("unknown host {}", *host));
    if (*bound != r.writer) {
      return fail(r, errc::permission_denied,
                  fmt::format("not signed by host {} (its key is {})", *host,
                              records::to_hex(std::span(*bound).first(4))));
    }
    return p;
  }

  if (const records::intent_payload* in = node_intent(p)) {
    const std::string host = in->creator.substr(node_intent_prefix.size());
    const auto bound = trust.host_key(host);
    if (!bound) return fail(r, errc::unknown_writer, fmt::format("unknown host {}", host));
    if (*bound != r.writer) {
      return fail(r, errc::permission_denied, fmt::format("intent not signed by host {}", host));
    }
    const bool targets_self =
        std::find(in->targets.begin(), in->targets.end(), host) != in->targets.end();
    if (in->rollback_of.empty()) {
      if (in->targets.size() != 1 || !targets_self) {
        return fail(r, errc::permission_denied,
                    fmt::format("a host's catch-up deployment may target only the host itself "
                                "({})",
                                host));
      }
      return p;
    }
    if (!targets_self) {
      return fail(
          r, errc::permission_denied,
          fmt::format("automatic rollback written by {}, which is not one of its targets", host));
    }
    const std::optional<bool> auto_rollback = trust.group_auto_rollback(in->app, in->group);
    if (!auto_rollback) {
      return fail(r, errc::unknown_writer,
                  fmt::format("group {}/{} unknown (automatic rollback)", in->app, in->group));
    }
    if (!*auto_rollback) {
      return fail(
          r, errc::permission_denied,
          fmt::format("group {}/{} does not have automatic rollback on", in->app, in->group));
    }
    return p;
  }

  const std::optional<permission> need = required_permission(p);
  if (!need) return fail(r, errc::schema, "no authority rule for this record type");
  const std::vector<records::record> history = trust.grant_history(r.writer);
  if (history.empty()) return fail(r, errc::unknown_writer, "no grant known for the writer");
  // The grant in effect when the record was signed: the newest version signed at or before
  // r.time_ms; if every known version is younger (clock skew, or a grant we have not seen
  // yet), the oldest one we know.
  const records::record* in_effect = nullptr;
  for (const records::record& g : history) {
    if (g.time_ms <= r.time_ms && (in_effect == nullptr || g.version > in_effect->version)) {
      in_effect = &g;
    }
  }
  if (in_effect == nullptr) {
    in_effect = &history.front();
    for (const records::record& g : history) {
      if (g.version < in_effect->version) in_effect = &g;
    }
  }
  MESH_TRY(auto grant, grant_of(r, *in_effect));
  MESH_CHECK(check_grant(r, grant, in_effect->version, *need));
  return p;
}

result<void> check_submission(const records::record& r, const records::trust_source& trust,
                              const records::public_key& admin, std::int64_t now_ms) {
  MESH_TRY(auto p, verify(r, trust, admin));
  const std::optional<permission> need = required_permission(p);
  if (!need || node_intent(p) != nullptr) return ok();
  const std::vector<records::record> history = trust.grant_history(r.writer);
  // verify() succeeded, so the history is not empty.
  const records::record* newest = &history.front();
  for (const records::record& g : history) {
    if (g.version > newest->version) newest = &g;
  }
  MESH_TRY(auto grant, grant_of(r, *newest));
  MESH_CHECK(check_grant(r, grant, newest->version, *need));
  // Distance between two int64 values without overflow: the unsigned difference is exact.
  const std::uint64_t skew =
      r.time_ms >= now_ms
          ? static_cast<std::uint64_t>(r.time_ms) - static_cast<std::uint64_t>(now_ms)
          : static_cast<std::uint64_t>(now_ms) - static_cast<std::uint64_t>(r.time_ms);
  if (skew > static_cast<std::uint64_t>(max_clock_skew_ms)) {
    return fail(r, errc::stale,
                fmt::format("clock skew: record time {} ms is {} ms from this node's clock "
                            "{} ms (limit {} ms); check the operator's clock",
                            r.time_ms, skew, now_ms, max_clock_skew_ms));
  }
  return ok();
}

}  // namespace meshdeploy::security

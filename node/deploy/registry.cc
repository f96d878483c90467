#include "node/deploy/registry.h"

#include "node/agent/archive.h"
#include "node/agent/revision.h"
#include "node/deploy/errc.h"
#include "node/swarm/manifest.h"
#include "storage/key.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <variant>

namespace meshdeploy::deploy {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kDeployments = "deployments";

// Decodes a record the store holds (verified on the way in, so a failure means corruption).
template <class P>
result<P> payload_of(const records::record& r) {
  auto p = records::decode_payload(r.type, r.payload);
  if (!p || !std::holds_alternative<P>(p.value())) {
    return make_error(errc::internal, fmt::format("stored {} record '{}' does not decode{}",
                                                  records::to_string(r.type), r.key,
                                                  p ? std::string() : ": " + p.error().message));
  }
  return std::get<P>(std::move(p).value());
}

result<std::optional<records::record>> get_record(const records::store& rs, records::record_type t,
                                                  std::string_view key) {
  auto r = rs.get(t, key);
  if (!r) return r.error().with_context("record store");
  return std::move(r).value();
}

// Decodes a stored JSON value; a corrupt value is an error naming it.
result<json> parse_stored(std::string_view what, std::string_view bytes) {
  auto j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(errc::internal, fmt::format("stored {} is corrupt", what));
  }
  return j;
}

// Decodes every value under `prefix` of a column family with `decode`; the
// first corrupt value stops the scan and is reported (nothing is skipped
// silently).
template <class T, class Decode>
result<std::vector<T>> scan_all(const storage::db& db, const char* cf, std::string_view prefix,
                                std::string_view what, Decode decode) {
  std::vector<T> out;
  std::optional<error> bad;
  MESH_CHECK(db.scan(cf, prefix, [&](std::string_view, std::string_view v) {
    auto j = parse_stored(what, v);
    auto item = j ? decode(j.value()) : result<T>(j.error());
    if (!item) {
      bad = item.error();
      return false;
    }
    out.push_back(std::move(item).value());
    return true;
  }));
  if (bad) return *bad;
  return out;
}

}  // namespace

bool matches(const std::vector<tag_set>& selector, const std::vector<tag>& host_tags) {
  return std::any_of(selector.begin(), selector.end(), [&](const tag_set& set) {
    return !set.empty() && std::all_of(set.begin(), set.end(), [&](const tag& t) {
      return std::find(host_tags.begin(), host_tags.end(), t) != host_tags.end();
    });
  });
}

result<tag> parse_tag(std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return make_error(errc::invalid_argument,
                      fmt::format("tag '{}' is not of the form KEY=VALUE (e.g. role=web)", text));
  }
  return tag{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

result<void> validate_name(std::string_view what, std::string_view name) {
  const bool good_chars = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
  if (name.empty() || name.size() > 100 || !good_chars) {
    return make_error(errc::invalid_argument,
                      fmt::format("{} name '{}' must be 1 to 100 characters of letters, digits, "
                                  "'.', '_' and '-'",
                                  what, name));
  }
  return ok();
}

json to_json(const application& a) {
  return {{"applicationName", a.name},
          {"name", a.name},
          {"createTime", to_rfc3339(a.create_time)},
          {"createTimeMs", a.create_time}};
}

json to_json(const deployment_group& g) {
  json sets = json::array();
  for (const auto& set : g.tag_sets) {
    json s = json::array();
    for (const auto& t : set) s.push_back({{"key", t.key}, {"value", t.value}});
    sets.push_back(std::move(s));
  }
  return {{"application", g.application},
          {"name", g.name},
          {"id", g.id},
          {"tagSets", std::move(sets)},
          {"deploymentConfig", g.config},
          {"autoRollback", g.auto_rollback},
          {"createTime", to_rfc3339(g.create_time)},
          {"createTimeMs", g.create_time}};
}

json to_json(const deployment_config& c) {
  return {{"name", c.name},
          {"builtin", c.builtin},
          {"minimumHealthyHosts", {{"type", to_string(c.type)}, {"value", c.value}}}};
}

json to_json(const revision_info& r) {
  return {{"application", r.application},
          {"revisionId", r.id},
          {"bundleType", r.format},
          {"size", r.size},
          {"registerTime", to_rfc3339(r.register_time)},
          {"registerTimeMs", r.register_time}};
}

std::vector<std::string> registry::column_families() { return {kDeployments}; }

application app_from_payload(const records::application_payload& p, unix_ms time) {
  return application{p.name, time};
}

std::string group_id(const std::string& app, const std::string& name) {
  const std::string key = app + "/" + name;
  unsigned char b[16];
  crypto_generichash(b, sizeof b, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                     nullptr, 0);
  b[6] = (b[6] & 0x0f) | 0x50;  // UUID version 5 shape (name-based)
  b[8] = (b[8] & 0x3f) | 0x80;
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
      "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
      b[15]);
}

deployment_group group_from_payload(const records::group_payload& p, unix_ms time) {
  deployment_group g;
  g.application = p.app;
  g.name = p.name;
  g.id = group_id(p.app, p.name);
  g.config = p.config;
  g.auto_rollback = p.auto_rollback;
  g.create_time = time;
  for (const auto& set : p.selector) {
    tag_set ts;
    for (const auto& [k, v] : set) ts.push_back({k, v});
    g.tag_sets.push_back(std::move(ts));
  }
  return g;
}

deployment_config config_from_payload(const records::config_payload& p) {
  deployment_config c;
  c.name = p.name;
  c.type = p.min_healthy_type == 1 ? min_healthy_type::fleet_percent
                                   : (p.min_healthy_type == 2 ? min_healthy_type::one_at_a_time
                                                              : min_healthy_type::host_count);
  c.value = p.value;
  c.builtin = false;
  return c;
}

revision_info revision_from_payload(const records::revision_payload& p, unix_ms time) {
  return revision_info{p.app, p.id, p.format, p.size, time};
}

registry::registry(storage::db& db, const records::store& records, fs::path revisions_dir)
    : db_(db), records_(records), revisions_dir_(std::move(revisions_dir)) {}

result<application> registry::get_app(const std::string& name) const {
  MESH_TRY(auto rec, get_record(records_, records::record_type::application, name));
  if (rec) {
    MESH_TRY(auto p, payload_of<records::application_payload>(*rec));
    if (!p.deleted) return app_from_payload(p, rec->time_ms);
  }
  return make_error(errc::not_found,
                    fmt::format("application '{}' does not exist (create it with: meshdeploy app "
                                "create {})",
                                name, name));
}

result<std::vector<application>> registry::list_apps() const {
  auto recs = records_.scan(records::record_type::application);
  if (!recs) return recs.error().with_context("record store");
  std::vector<application> out;
  for (const auto& r : recs.value()) {
    MESH_TRY(auto p, payload_of<records::application_payload>(r));
    if (!p.deleted) out.push_back(app_from_payload(p, r.time_ms));
  }
  return out;
}

result<deployment_group> registry::get_group(const std::string& app,
                                             const std::string& name) const {
  MESH_TRY(auto rec, get_record(records_, records::record_type::group, app + "/" + name));
  if (rec) {
    MESH_TRY(auto p, payload_of<records::group_payload>(*rec));
    if (!p.deleted) return group_from_payload(p, rec->time_ms);
  }
  return make_error(
      errc::not_found,
      fmt::format("deployment group '{}' of application '{}' does not exist", name, app));
}

result<std::vector<deployment_group>> registry::list_groups(const std::string& app) const {
  auto recs = records_.scan(records::record_type::group, app + "/");
  if (!recs) return recs.error().with_context("record store");
  std::vector<deployment_group> out;
  for (const auto& r : recs.value()) {
    MESH_TRY(auto p, payload_of<records::group_payload>(r));
    if (!p.deleted && p.app == app) out.push_back(group_from_payload(p, r.time_ms));
  }
  return out;
}

result<deployment_config> registry::get_config(const std::string& name) const {
  if (auto b = find_builtin_config(name)) return *b;
  MESH_TRY(auto rec, get_record(records_, records::record_type::config, name));
  if (rec) {
    MESH_TRY(auto p, payload_of<records::config_payload>(*rec));
    if (!p.deleted) return config_from_payload(p);
  }
  return make_error(errc::not_found,
                    fmt::format("deployment config '{}' does not exist (built-ins: OneAtATime, "
                                "HalfAtATime, AllAtOnce; see: meshdeploy config list)",
                                name));
}

result<std::vector<deployment_config>> registry::list_configs() const {
  auto recs = records_.scan(records::record_type::config);
  if (!recs) return recs.error().with_context("record store");
  std::vector<deployment_config> out = builtin_configs();
  for (const auto& r : recs.value()) {
    MESH_TRY(auto p, payload_of<records::config_payload>(r));
    if (!p.deleted) out.push_back(config_from_payload(p));
  }
  return out;
}

result<revision_info> registry::get_revision(const std::string& app, const std::string& id) const {
  MESH_TRY(auto rec, get_record(records_, records::record_type::revision, app + "/" + id));
  if (!rec) {
    return make_error(
        errc::not_found,
        fmt::format("revision {} of application '{}' is not registered (push it with: "
                    "meshdeploy push --app {} --source PATH)",
                    id, app, app));
  }
  MESH_TRY(auto p, payload_of<records::revision_payload>(*rec));
  return revision_from_payload(p, rec->time_ms);
}

result<std::vector<revision_info>> registry::list_revisions(const std::string& app) const {
  auto recs = records_.scan(records::record_type::revision, app + "/");
  if (!recs) return recs.error().with_context("record store");
  std::vector<revision_info> out;
  for (const auto& r : recs.value()) {
    MESH_TRY(auto p, payload_of<records::revision_payload>(r));
    if (p.app == app) out.push_back(revision_from_payload(p, r.time_ms));
  }
  std::sort(out.begin(), out.end(), [](const revision_info& a, const revision_info& b) {
    return a.register_time > b.register_time;
  });
  return out;
}

namespace {

// Whether (type, key) holds a live (not deleted) definition.
template <class P>
result<bool> live(const records::store& rs, records::record_type t, const std::string& key) {
  MESH_TRY(auto rec, get_record(rs, t, key));
  if (!rec) return false;
  MESH_TRY(auto p, payload_of<P>(*rec));
  return !p.deleted;
}

}  // namespace

result<void> registry::check_definition(const records::payload& payload,
                                        definition_change change) const {
  using records::record_type;
  const bool replace = change == definition_change::replace;
  if (replace) {
    const auto* g = std::get_if<records::group_payload>(&payload);
    if (g == nullptr || g->deleted) {
      return make_error(errc::invalid_argument,
                        "only a deployment group's settings can be replaced (not a delete, and "
                        "no other record type)");
    }
  }
  if (const auto* a = std::get_if<records::application_payload>(&payload)) {
    MESH_CHECK(validate_name("application", a->name));
    MESH_TRY(bool exists,
             live<records::application_payload>(records_, record_type::application, a->name));
    if (!a->deleted && exists) {
      return make_error(errc::already_exists,
                        fmt::format("application '{}' already exists", a->name));
    }
    if (a->deleted) {
      if (!exists) MESH_CHECK(get_app(a->name));  // not_found with its message
      MESH_TRY(auto groups, list_groups(a->name));
      if (!groups.empty()) {
        return make_error(errc::conflict,
                          fmt::format("application '{}' still has {} deployment group(s); delete "
                                      "them first",
                                      a->name, groups.size()));
      }
    }
    return ok();
  }
  if (const auto* g = std::get_if<records::group_payload>(&payload)) {
    MESH_CHECK(get_app(g->app));
    MESH_CHECK(validate_name("deployment group", g->name));
    if (g->deleted) {
      MESH_CHECK(get_group(g->app, g->name));
      return ok();
    }
    if (g->selector.empty() || std::any_of(g->selector.begin(), g->selector.end(),
                                           [](const auto& s) { return s.empty(); })) {
      return make_error(
          errc::invalid_argument,
          fmt::format("deployment group '{}' needs at least one tag (--tag KEY=VALUE)", g->name));
    }
    MESH_TRY(auto config, get_config(g->config));
    if (config.name != g->config) {
      return make_error(errc::invalid_argument,
                        fmt::format("deployment group '{}': use the canonical config name '{}'",
                                    g->name, config.name));
    }
    MESH_TRY(bool exists,
             live<records::group_payload>(records_, record_type::group, g->app + "/" + g->name));
    if (replace) {
      if (!exists) MESH_CHECK(get_group(g->app, g->name));  // not_found with its message
      return ok();
    }
    if (exists) {
      return make_error(
          errc::already_exists,
          fmt::format("deployment group '{}' of application '{}' already exists", g->name, g->app));
    }
    return ok();
  }
  if (const auto* c = std::get_if<records::config_payload>(&payload)) {
    MESH_CHECK(validate_custom_config_name(c->name));
    if (c->min_healthy_type > 1 || (c->min_healthy_type == 1 && c->value > 100)) {
      return make_error(errc::invalid_argument,
                        fmt::format("deployment config '{}': minimum healthy hosts must be a count "
                                    "or a percent 0..100",
                                    c->name));
    }
    MESH_TRY(bool exists, live<records::config_payload>(records_, record_type::config, c->name));
    if (!c->deleted && exists) {
      return make_error(errc::already_exists,
                        fmt::format("deployment config '{}' already exists", c->name));
    }
    return ok();
  }
  if (const auto* r = std::get_if<records::revision_payload>(&payload)) {
    MESH_CHECK(get_app(r->app));
    if (!has_bundle(revision_from_payload(*r, 0))) {
      return make_error(errc::invalid_argument,
                        fmt::format("revision {} of application '{}': this node does not hold its "
                                    "bundle (upload it with the record: meshdeploy push)",
                                    r->id, r->app));
    }
    return ok();
  }
  return ok();
}

fs::path registry::bundle_path(const revision_info& r) const {
  return revisions_dir_ / r.application / (r.id + "." + r.format);
}

bool registry::has_bundle(const revision_info& r) const {
  std::error_code ec;
  return fs::is_regular_file(bundle_path(r), ec);
}

result<void> registry::check_manifest(const records::revision_payload& rev,
                                      const fs::path& file) const {
  if (rev.manifest.empty()) return ok();
  MESH_TRY(auto m, swarm::manifest_of_file(file));
  const auto encoded = swarm::encode_manifest(m);
  if (const auto mid = swarm::manifest_id(encoded); mid != rev.manifest) {
    return make_error(errc::invalid_argument,
                      fmt::format("the bundle's piece manifest is {} but its signed revision "
                                  "record names {}",
                                  mid, rev.manifest));
  }
  if (manifest_sink_) manifest_sink_(rev.id, encoded);
  return ok();
}

result<void> registry::store_bundle(const records::revision_payload& rev, const fs::path& file,
                                    bool pieces_verified) {
  MESH_CHECK(validate_name("application", rev.app));
  MESH_TRY(auto format, agent::detect_bundle_format(file));
  // The signed record names the manifest, the manifest every piece's hash and length, and the
  // pieces cover [0, size): a file whose every piece matched is the signed bytes, and hashing it
  // whole again would be a third BLAKE2b pass over each byte.
  std::string id = rev.id;
  if (!pieces_verified || rev.manifest.empty()) {
    MESH_TRY(id, agent::hash_file(file));
  }
  std::error_code ec;
  const std::uint64_t size = fs::file_size(file, ec);
  const std::string fmt_name(agent::to_string(format));
  if (id != rev.id || size != rev.size || fmt_name != rev.format) {
    fs::remove(file, ec);
    return make_error(errc::invalid_argument,
                      fmt::format("the uploaded bundle ({} bytes, {}, id {}) does not match its "
                                  "signed revision record ({} bytes, {}, id {})",
                                  size, fmt_name, id, rev.size, rev.format, rev.id));
  }
  const revision_info info = revision_from_payload(rev, 0);
  const fs::path dest = bundle_path(info);
  if (has_bundle(info)) {
    fs::remove(file, ec);
    return ok();
  }
  fs::create_directories(dest.parent_path(), ec);
  if (!ec) fs::rename(file, dest, ec);
  if (ec) {
    // Different filesystems: copy instead.
    ec.clear();
    fs::copy_file(file, dest, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return make_error(errc::internal,
                        fmt::format("cannot store bundle {}: {}", dest.string(), ec.message()));
    }
    fs::remove(file, ec);
  }
  return ok();
}

result<void> registry::put_deployment(const deployment_record& d, storage::durability durability) {
  std::lock_guard lock(deferred_mu_);
  MESH_CHECK(db_.put(kDeployments, d.id, to_json(d).dump(), durability));
  deferred_.erase(d.id);
  return ok();
}

void registry::put_deployment_deferred(deployment_record d) {
  std::lock_guard lock(deferred_mu_);
  std::string id = d.id;
  deferred_.insert_or_assign(std::move(id), std::move(d));
}

result<void> registry::flush_deferred_deployments() {
  std::lock_guard lock(deferred_mu_);
  while (!deferred_.empty()) {
    auto it = deferred_.begin();
    MESH_CHECK(db_.put(kDeployments, it->first, to_json(it->second).dump(),
                       storage::durability::buffered));
    deferred_.erase(it);
  }
  return ok();
}

result<deployment_record> registry::get_deployment(const std::string& id) const {
  {
    std::lock_guard lock(deferred_mu_);
    if (auto it = deferred_.find(id); it != deferred_.end()) return it->second;
  }
  MESH_TRY(auto bytes, db_.get(kDeployments, id));
  if (!bytes) {
    return make_error(errc::not_found, fmt::format("deployment '{}' does not exist", id));
  }
  auto j = json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return make_error(errc::internal, fmt::format("stored deployment '{}' is corrupt", id));
  }
  return deployment_from_json(j);
}

result<std::vector<deployment_record>> registry::list_deployments(const std::string& app,
                                                                  const std::string& group) const {
  MESH_TRY(auto all,
           scan_all<deployment_record>(db_, kDeployments, "", "deployment", deployment_from_json));
  std::map<std::string, deployment_record> held;
  {
    std::lock_guard lock(deferred_mu_);
    held = deferred_;
  }
  for (auto& d : all) {
    if (auto it = held.find(d.id); it != held.end()) {
      d = std::move(it->second);
      held.erase(it);
    }
  }
  for (auto& [id, d] : held) all.push_back(std::move(d));
  std::vector<deployment_record> out;
  for (auto& d : all) {
    if ((app.empty() || d.application == app) && (group.empty() || d.group == group)) {
      out.push_back(std::move(d));
    }
  }
  std::sort(out.begin(), out.end(), [](const deployment_record& a, const deployment_record& b) {
    return a.create_time > b.create_time;
  });
  return out;
}

}  // namespace meshdeploy::deploy

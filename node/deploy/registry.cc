#include "node/deploy/registry.h"

#include "node/agent/archive.h"
#include "node/agent/revision.h"
#include "node/deploy/errc.h"
#include "storage/key.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>

namespace meshdeploy::deploy {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kApps = "apps";
constexpr const char* kGroups = "groups";
constexpr const char* kConfigs = "configs";
constexpr const char* kRevisions = "revisions";
constexpr const char* kDeployments = "deployments";

std::string new_uuid() {
  unsigned char b[16];
  randombytes_buf(b, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // variant
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
      "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
      b[15]);
}

// Decodes a stored JSON value; a corrupt value is an error naming it.
result<json> parse_stored(std::string_view what, std::string_view bytes) {
  auto j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(errc::internal, fmt::format("stored {} is corrupt", what));
  }
  return j;
}

result<application> app_from_json(const json& j) {
  return application{j.value("name", ""), j.value("createTimeMs", unix_ms{0})};
}

result<deployment_group> group_from_json(const json& j) {
  deployment_group g;
  try {
    g.application = j.value("application", "");
    g.name = j.value("name", "");
    g.id = j.value("id", "");
    g.config = j.value("deploymentConfig", "OneAtATime");
    g.auto_rollback = j.value("autoRollback", false);
    g.create_time = j.value("createTimeMs", unix_ms{0});
    for (const auto& set : j.at("tagSets")) {
      tag_set ts;
      for (const auto& t : set)
        ts.push_back({t.at("key").get<std::string>(), t.at("value").get<std::string>()});
      g.tag_sets.push_back(std::move(ts));
    }
  } catch (const json::exception& e) {
    return make_error(errc::internal, fmt::format("stored group is corrupt: {}", e.what()));
  }
  return g;
}

result<deployment_config> config_from_json(const json& j) {
  deployment_config c;
  c.name = j.value("name", "");
  const auto mh = j.value("minimumHealthyHosts", json::object());
  c.type = mh.value("type", "HOST_COUNT") == "FLEET_PERCENT" ? min_healthy_type::fleet_percent
                                                             : min_healthy_type::host_count;
  c.value = mh.value("value", 0u);
  return c;
}

result<revision_info> revision_from_json(const json& j) {
  return revision_info{j.value("application", ""), j.value("revisionId", ""),
                       j.value("bundleType", ""), j.value("size", std::uint64_t{0}),
                       j.value("registerTimeMs", unix_ms{0})};
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

std::vector<std::string> registry::column_families() {
  return {kApps, kGroups, kConfigs, kRevisions, kDeployments};
}

registry::registry(storage::db& db, fs::path revisions_dir)
    : db_(db), revisions_dir_(std::move(revisions_dir)) {}

result<application> registry::create_app(const std::string& name) {
  MESH_CHECK(validate_name("application", name));
  MESH_TRY(auto existing, db_.get(kApps, name));
  if (existing) {
    return make_error(errc::already_exists, fmt::format("application '{}' already exists", name));
  }
  application a{name, now_ms()};
  MESH_CHECK(db_.put(kApps, name, to_json(a).dump(), storage::durability::synced));
  return a;
}

result<application> registry::get_app(const std::string& name) const {
  MESH_TRY(auto bytes, db_.get(kApps, name));
  if (!bytes) {
    return make_error(errc::not_found,
                      fmt::format("application '{}' does not exist (create it with: meshdeploy app "
                                  "create {})",
                                  name, name));
  }
  MESH_TRY(auto j, parse_stored("application", *bytes));
  return app_from_json(j);
}

result<std::vector<application>> registry::list_apps() const {
  return scan_all<application>(db_, kApps, "", "application", app_from_json);
}

result<void> registry::delete_app(const std::string& name) {
  MESH_CHECK(get_app(name));
  MESH_TRY(auto groups, list_groups(name));
  if (!groups.empty()) {
    return make_error(errc::conflict,
                      fmt::format("application '{}' still has {} deployment group(s); delete them "
                                  "first",
                                  name, groups.size()));
  }
  return db_.erase(kApps, name, storage::durability::synced);
}

result<deployment_group> registry::create_group(deployment_group g) {
  MESH_CHECK(get_app(g.application));
  MESH_CHECK(validate_name("deployment group", g.name));
  if (g.tag_sets.empty() || std::any_of(g.tag_sets.begin(), g.tag_sets.end(),
                                        [](const tag_set& s) { return s.empty(); })) {
    return make_error(
        errc::invalid_argument,
        fmt::format("deployment group '{}' needs at least one tag (--tag KEY=VALUE)", g.name));
  }
  MESH_TRY(auto config, get_config(g.config));
  g.config = config.name;
  const std::string k = storage::key().str(g.application).str(g.name).bytes();
  MESH_TRY(auto existing, db_.get(kGroups, k));
  if (existing) {
    return make_error(errc::already_exists,
                      fmt::format("deployment group '{}' of application '{}' already exists",
                                  g.name, g.application));
  }
  g.id = new_uuid();
  g.create_time = now_ms();
  MESH_CHECK(db_.put(kGroups, k, to_json(g).dump(), storage::durability::synced));
  return g;
}

result<deployment_group> registry::get_group(const std::string& app,
                                             const std::string& name) const {
  MESH_TRY(auto bytes, db_.get(kGroups, storage::key().str(app).str(name).bytes()));
  if (!bytes) {
    return make_error(
        errc::not_found,
        fmt::format("deployment group '{}' of application '{}' does not exist", name, app));
  }
  MESH_TRY(auto j, parse_stored("deployment group", *bytes));
  return group_from_json(j);
}

result<std::vector<deployment_group>> registry::list_groups(const std::string& app) const {
  return scan_all<deployment_group>(db_, kGroups, storage::key().str(app).bytes(),
                                    "deployment group", group_from_json);
}

result<deployment_config> registry::create_config(deployment_config c) {
  MESH_CHECK(validate_custom_config_name(c.name));
  MESH_TRY(auto existing, db_.get(kConfigs, c.name));
  if (existing) {
    return make_error(errc::already_exists,
                      fmt::format("deployment config '{}' already exists", c.name));
  }
  c.builtin = false;
  MESH_CHECK(db_.put(kConfigs, c.name, to_json(c).dump(), storage::durability::synced));
  return c;
}

result<deployment_config> registry::get_config(const std::string& name) const {
  if (auto b = find_builtin_config(name)) return *b;
  MESH_TRY(auto bytes, db_.get(kConfigs, name));
  if (!bytes) {
    return make_error(errc::not_found,
                      fmt::format("deployment config '{}' does not exist (built-ins: OneAtATime, "
                                  "HalfAtATime, AllAtOnce; see: meshdeploy config list)",
                                  name));
  }
  MESH_TRY(auto j, parse_stored("deployment config", *bytes));
  return config_from_json(j);
}

result<std::vector<deployment_config>> registry::list_configs() const {
  MESH_TRY(auto custom,
           scan_all<deployment_config>(db_, kConfigs, "", "deployment config", config_from_json));
  std::vector<deployment_config> out = builtin_configs();
  out.insert(out.end(), custom.begin(), custom.end());
  return out;
}

fs::path registry::bundle_path(const revision_info& r) const {
  return revisions_dir_ / r.application / (r.id + "." + r.format);
}

result<revision_info> registry::add_revision(const std::string& app, const fs::path& file) {
  MESH_CHECK(get_app(app));
  MESH_TRY(auto format, agent::detect_bundle_format(file));
  MESH_TRY(auto id, agent::hash_file(file));
  if (auto existing = get_revision(app, id)) {
    std::error_code ec;
    fs::remove(file, ec);
    return existing;
  }
  revision_info r;
  r.application = app;
  r.id = id;
  r.format = std::string(agent::to_string(format));
  std::error_code ec;
  r.size = fs::file_size(file, ec);
  r.register_time = now_ms();
  const fs::path dest = bundle_path(r);
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
  MESH_CHECK(db_.put(kRevisions, storage::key().str(app).str(id).bytes(), to_json(r).dump(),
                     storage::durability::synced));
  return r;
}

result<revision_info> registry::get_revision(const std::string& app, const std::string& id) const {
  MESH_TRY(auto bytes, db_.get(kRevisions, storage::key().str(app).str(id).bytes()));
  if (!bytes) {
    return make_error(
        errc::not_found,
        fmt::format("revision {} of application '{}' is not registered (push it with: "
                    "meshdeploy push --app {} --source PATH)",
                    id, app, app));
  }
  MESH_TRY(auto j, parse_stored("revision", *bytes));
  return revision_from_json(j);
}

result<std::vector<revision_info>> registry::list_revisions(const std::string& app) const {
  MESH_TRY(auto out, scan_all<revision_info>(db_, kRevisions, storage::key().str(app).bytes(),
                                             "revision", revision_from_json));
  std::sort(out.begin(), out.end(), [](const revision_info& a, const revision_info& b) {
    return a.register_time > b.register_time;
  });
  return out;
}

result<void> registry::put_deployment(const deployment_record& d) {
  return db_.put(kDeployments, d.id, to_json(d).dump(), storage::durability::synced);
}

result<deployment_record> registry::get_deployment(const std::string& id) const {
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

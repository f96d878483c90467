// The node's registry of applications, deployment groups, deployment
// configurations, revisions and deployments, kept in RocksDB.
//
// This is the single-host stand-in for the replicated signed records of
// DESIGN.md §4: same names and shapes, one writer (this node). The record
// layer will replace the storage behind this interface.
//
// Thread safety: every method may be called from any thread (RocksDB is
// thread-safe); read-modify-write sequences on one deployment happen on one
// thread (the deployment's runner).
#pragma once

#include "node/deploy/deployment_config.h"
#include "node/deploy/status.h"
#include "storage/db.h"
#include "storage/result.h"

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace meshdeploy::deploy {

struct application {
  std::string name;
  unix_ms create_time = 0;
};

struct tag {
  std::string key;
  std::string value;
  bool operator==(const tag&) const = default;
};
// A host matches a tag set when it has every tag of the set (AND); a group
// matches a host when any of its tag sets matches (OR), as CodeDeploy's tag sets.
using tag_set = std::vector<tag>;

struct deployment_group {
  std::string application;
  std::string name;
  std::string id;  // random UUID, CodeDeploy's deploymentGroupId
  std::vector<tag_set> tag_sets;
  std::string config = "OneAtATime";
  bool auto_rollback = false;
  unix_ms create_time = 0;
};

struct revision_info {
  std::string application;
  std::string id;      // BLAKE2b-256 hex of the bundle
  std::string format;  // "zip", "tar", "tgz"
  std::uint64_t size = 0;
  unix_ms register_time = 0;
};

bool matches(const std::vector<tag_set>& selector, const std::vector<tag>& host_tags);
// Parses "k=v"; error names the text.
result<tag> parse_tag(std::string_view text);
// Checks an application or group name: 1..100 of [A-Za-z0-9._-].
result<void> validate_name(std::string_view what, std::string_view name);

nlohmann::json to_json(const application& a);
nlohmann::json to_json(const deployment_group& g);
nlohmann::json to_json(const deployment_config& c);
nlohmann::json to_json(const revision_info& r);

class registry {
 public:
  // Column families the registry needs in the database.
  static std::vector<std::string> column_families();

  // `db` must outlive the registry. Bundles live in `revisions_dir`.
  registry(storage::db& db, std::filesystem::path revisions_dir);

  result<application> create_app(const std::string& name);
  result<application> get_app(const std::string& name) const;
  result<std::vector<application>> list_apps() const;
  // Refuses while the application still has deployment groups.
  result<void> delete_app(const std::string& name);

  // Validates names, tags and the config; assigns id and create_time.
  result<deployment_group> create_group(deployment_group g);
  result<deployment_group> get_group(const std::string& app, const std::string& name) const;
  result<std::vector<deployment_group>> list_groups(const std::string& app) const;

  result<deployment_config> create_config(deployment_config c);
  // Built-ins (either spelling) or a custom config.
  result<deployment_config> get_config(const std::string& name) const;
  result<std::vector<deployment_config>> list_configs() const;

  // Registers the bundle at `file` (moved into the registry's directory; its
  // format is detected from its bytes, its id is its hash). Registering the
  // same bytes twice returns the existing revision.
  result<revision_info> add_revision(const std::string& app, const std::filesystem::path& file);
  result<revision_info> get_revision(const std::string& app, const std::string& id) const;
  result<std::vector<revision_info>> list_revisions(const std::string& app) const;
  std::filesystem::path bundle_path(const revision_info& r) const;

  result<void> put_deployment(const deployment_record& d);
  result<deployment_record> get_deployment(const std::string& id) const;
  // Newest first; empty filters match everything.
  result<std::vector<deployment_record>> list_deployments(const std::string& app,
                                                          const std::string& group) const;

 private:
  storage::db& db_;
  std::filesystem::path revisions_dir_;
};

}  // namespace meshdeploy::deploy

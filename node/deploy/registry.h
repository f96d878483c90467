// The node's registry of applications, deployment groups, deployment
// configurations, revisions and deployments, kept in RocksDB.
//
// Definitions (applications, groups, configs, revisions) are the verified,
// replicated records of DESIGN.md §4 (node/records/store.h); the registry
// reads them in the API's shapes and checks new ones as CodeDeploy would.
// Deployments are still this host's own documents (single-host deployer).
//
// Thread safety: every method may be called from any thread (RocksDB and the
// record store are thread-safe); read-modify-write sequences on one
// deployment happen on one thread (the deployment's runner).
#pragma once

#include "node/deploy/deployment_config.h"
#include "node/deploy/status.h"
#include "node/records/payloads.h"
#include "node/records/store.h"
#include "storage/db.h"
#include "storage/result.h"

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
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
  // Column families the registry itself needs (the local deployments); the definitions live in
  // the record store (records::store::column_families()).
  static std::vector<std::string> column_families();

  // `db` and `records` must outlive the registry. Bundles live in `revisions_dir`.
  registry(storage::db& db, const records::store& records, std::filesystem::path revisions_dir);

  // Definitions, read from the verified records (node/records/payloads.h). Deleted ones read
  // as not_found. create_time is the signing time of the newest version.
  result<application> get_app(const std::string& name) const;
  result<std::vector<application>> list_apps() const;
  result<deployment_group> get_group(const std::string& app, const std::string& name) const;
  result<std::vector<deployment_group>> list_groups(const std::string& app) const;
  // Built-ins (either spelling) or a custom config.
  result<deployment_config> get_config(const std::string& name) const;
  result<std::vector<deployment_config>> list_configs() const;
  result<revision_info> get_revision(const std::string& app, const std::string& id) const;
  // Newest first.
  result<std::vector<revision_info>> list_revisions(const std::string& app) const;

  // What a submitted definition means to do. A record is the same either way (a newer version
  // of its key, which replaces the stored one on every node: records::supersedes); only the
  // submit-time check differs.
  enum class definition_change {
    create_or_delete,  // the payload's `deleted` says which
    replace,           // a new definition of a deployment group that exists (UpdateDeploymentGroup)
  };

  // The checks an operator's definition must pass at the node it is submitted through, beyond
  // the record schema the verifier checks (CodeDeploy's create semantics): valid names; create
  // of something that exists -> already_exists; a group's application and config exist and it
  // has at least one non-empty tag set; an application is deleted only without groups; a
  // revision's application exists and its bundle is held here (store_bundle first). A replace
  // is only for a group payload that is not a delete, of a group that exists (not_found
  // otherwise), with the same checks as its create. Payload types that are not definitions
  // pass. Errors: node/deploy errc.
  result<void> check_definition(
      const records::payload& p,
      definition_change change = definition_change::create_or_delete) const;

  // Checks that `file` cuts into the piece manifest the signed record names (rev.manifest; ""
  // passes), so peers will accept its pieces. Uploads need it; a bundle the swarm assembled was
  // verified piece by piece against that manifest already. Errors: invalid_argument.
  result<void> check_manifest(const records::revision_payload& rev,
                              const std::filesystem::path& file) const;
  // Called by check_manifest with the bundle id and the encoded manifest it computed and found
  // matching, so the node that seeds the upload need not hash the bundle a second time on its
  // first manifest request (node.cc keeps it in the swarm's blob store: docs/swarm.md). Set it
  // before uploads can arrive; it is called on the uploading thread.
  using manifest_sink =
      std::function<void(const std::string& id, std::span<const std::byte> encoded)>;
  void set_manifest_sink(manifest_sink sink) { manifest_sink_ = std::move(sink); }
  // Moves the uploaded bundle `file` into place for revision `rev` after checking that its
  // bytes hash to rev.id, and that its size and detected format match the record. Storing a
  // bundle that is already held just removes `file`. Errors: invalid_argument naming the
  // mismatch, internal on filesystem failure.
  // `pieces_verified`: every byte of `file` was already checked, piece by piece, against the
  // manifest whose hash the signed record names (the swarm's downloads: docs/swarm.md
  // "Verification"); the whole-file hash is then skipped (size and format are still checked).
  // Ignored when rev.manifest is empty (an older record: the whole hash is the only link).
  result<void> store_bundle(const records::revision_payload& rev, const std::filesystem::path& file,
                            bool pieces_verified = false);
  // Where the bundle of a revision lives (whether or not it is held here).
  std::filesystem::path bundle_path(const revision_info& r) const;
  bool has_bundle(const revision_info& r) const;

  // `durability` buffered suits documents recomputed from records (the mesh's views). Replaces
  // a document put deferred.
  result<void> put_deployment(const deployment_record& d,
                              storage::durability durability = storage::durability::synced);
  // For documents that change many times a second and can be recomputed after a crash (an open
  // deployment's view, rewritten on every host's progress): held in memory, where every read
  // below sees it at once, until put_deployment replaces it (the deployment ended) or
  // flush_deferred_deployments writes it (buffered; the node does at shutdown). Rendering and
  // writing the whole document on every change, and then once a second, was most of a node's
  // CPU in a 32-host rollout (bench/RESULTS.md).
  void put_deployment_deferred(deployment_record d);
  // Writes the documents put deferred since the last call; the first error is returned, the
  // document it concerns stays held for the next call.
  result<void> flush_deferred_deployments();
  result<deployment_record> get_deployment(const std::string& id) const;
  // Newest first; empty filters match everything.
  result<std::vector<deployment_record>> list_deployments(const std::string& app,
                                                          const std::string& group) const;

 private:
  storage::db& db_;
  const records::store& records_;
  std::filesystem::path revisions_dir_;
  manifest_sink manifest_sink_;
  mutable std::mutex deferred_mu_;
  std::map<std::string, deployment_record> deferred_;  // GUARDED_BY(deferred_mu_)
};

// Conversions from record payloads to the API's shapes.
application app_from_payload(const records::application_payload& p, unix_ms time);
deployment_group group_from_payload(const records::group_payload& p, unix_ms time);
deployment_config config_from_payload(const records::config_payload& p);
revision_info revision_from_payload(const records::revision_payload& p, unix_ms time);
// The deterministic CodeDeploy-style deploymentGroupId of APP/GROUP (a UUID-shaped hash).
std::string group_id(const std::string& app, const std::string& name);

}  // namespace meshdeploy::deploy

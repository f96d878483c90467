// The rollout as this node sees it, for GET /metrics (docs/operations.md "Metrics"):
// deployments by status, deployments it saw end by final status, hosts inside the rollout
// window per deployment group, and the lifecycle hooks this node ran (duration histogram and
// outcome counter per event). It only reads deployment documents (deploy::registry's); the
// node feeds it after changes (`mark_changed`, then `observe` on a worker thread) so a scrape
// never touches the database.
//
// Label sets are bounded: statuses and lifecycle events are fixed lists, outcomes are the
// agent's error codes, groups are the operator's; no deployment or host ids.
//
// Thread safety: every member function may be called from any thread (one mutex).
#pragma once

#include "node/deploy/status.h"
#include "node/metrics/exposition.h"

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace meshdeploy::node::metrics {

class rollout_metrics {
 public:
  // `self`: this node's host name (its host rows hold the hooks it ran). `started`: when this
  // node started; a deployment created at or after it counts as seen ending, and its hooks as
  // run here, even when the first document observed is already final.
  rollout_metrics(std::string self, deploy::unix_ms started);
  rollout_metrics(const rollout_metrics&) = delete;
  rollout_metrics& operator=(const rollout_metrics&) = delete;

  // Replaces the known set with `all` (every deployment the registry holds: at start and after
  // retention pruned some); deployments absent from it are forgotten. Each present one is
  // observed as by `observe`.
  void resync(const std::vector<deploy::deployment_record>& all);
  // Takes in a deployment's current document (one older than the last taken in, by `version`, is
  // ignored). A deployment moving from a non-final status (or
  // created since `started`) to a final one adds one to the finished counter of that status;
  // every event of this node's host row that ended with a script (succeeded or failed, with
  // diagnostics naming a script) and was not seen before adds one hook observation.
  void observe(const deploy::deployment_record& d);

  // Remembers that deployment `id` changed; `take_changed` hands the ids over (and forgets
  // them) so that the caller reads their documents and calls `observe`. Cheap: for the node's
  // change callbacks.
  void mark_changed(const std::string& id);
  std::vector<std::string> take_changed();

  // Appends the families meshdeploy_deployments, meshdeploy_deployments_finished_total,
  // meshdeploy_rollout_hosts_in_window, meshdeploy_hook_duration_seconds and
  // meshdeploy_hook_runs_total.
  void write(exposition& out) const;

 private:
  struct known {
    deploy::deployment_status status = deploy::deployment_status::created;
    std::uint64_t version = 0;  // the document's; older ones are ignored
    std::string application;
    std::string group;
    std::uint32_t hosts_in_window = 0;       // host rows InProgress while the deployment is open
    std::set<std::string> hook_events_seen;  // this host's events already counted
  };
  void observe_locked(const deploy::deployment_record& d);

  const std::string self_;
  const deploy::unix_ms started_;
  mutable std::mutex mu_;
  std::map<std::string, known> deployments_;                     // GUARDED_BY(mu_)
  std::map<deploy::deployment_status, std::uint64_t> finished_;  // GUARDED_BY(mu_)
  std::map<std::string, histogram> hook_durations_;              // GUARDED_BY(mu_), by event
  std::map<std::pair<std::string, std::string>, std::uint64_t> hook_runs_;  // (event, outcome)
  std::set<std::string> changed_;                                           // GUARDED_BY(mu_)
};

}  // namespace meshdeploy::node::metrics

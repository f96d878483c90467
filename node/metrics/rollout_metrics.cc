#include "node/metrics/rollout_metrics.h"

#include "node/agent/lifecycle_event.h"

#include <array>

namespace meshdeploy::node::metrics {

namespace {

constexpr std::array kDeploymentStatuses{
    deploy::deployment_status::created,     deploy::deployment_status::queued,
    deploy::deployment_status::in_progress, deploy::deployment_status::succeeded,
    deploy::deployment_status::failed,      deploy::deployment_status::stopped};

constexpr std::array<std::string_view, 6> kHookOutcomes{
    "Success",        "ScriptMissing", "ScriptNotExecutable",
    "ScriptTimedOut", "ScriptFailed",  "UnknownError"};

// The agent's error codes; anything else a document might carry is UnknownError, so the label
// set stays the fixed list above.
std::string outcome_label(const std::string& code) {
  for (auto o : kHookOutcomes) {
    if (o == code) return code;
  }
  return "UnknownError";
}

}  // namespace

rollout_metrics::rollout_metrics(std::string self, deploy::unix_ms started)
    : self_(std::move(self)), started_(started) {}

void rollout_metrics::resync(const std::vector<deploy::deployment_record>& all) {
  std::lock_guard lock(mu_);
  std::set<std::string> present;
  for (const auto& d : all) {
    present.insert(d.id);
    observe_locked(d);
  }
  std::erase_if(deployments_, [&](const auto& kv) { return !present.contains(kv.first); });
}

void rollout_metrics::observe(const deploy::deployment_record& d) {
  std::lock_guard lock(mu_);
  observe_locked(d);
}

void rollout_metrics::observe_locked(const deploy::deployment_record& d) {
  auto [it, first_sight] = deployments_.try_emplace(d.id);
  known& k = it->second;
  // Documents are read on several threads (a resync's list may be older than a change's read):
  // an older version than the one already taken in changes nothing.
  if (!first_sight && d.version < k.version) return;
  k.version = d.version;
  // Seen here since it began: the node knew it open, or it was created after the node started
  // (a short deployment can be created and end between two observations).
  const bool ours = d.create_time >= started_;
  const bool was_open = first_sight ? ours : !deploy::is_terminal(k.status);
  if (deploy::is_terminal(d.status) && was_open) ++finished_[d.status];
  k.status = d.status;
  k.application = d.application;
  k.group = d.group;
  k.hosts_in_window = 0;
  if (!deploy::is_terminal(d.status)) {
    for (const auto& h : d.hosts) {
      if (h.status == deploy::host_status::in_progress) ++k.hosts_in_window;
    }
  }
  for (const auto& h : d.hosts) {
    if (h.host != self_) continue;
    for (const auto& e : h.events) {
      const bool ended =
          e.status == deploy::host_status::succeeded || e.status == deploy::host_status::failed;
      if (!ended || !e.diag || e.diag->script_name.empty()) continue;
      // Only the lifecycle's hook events, by their fixed names (reserved ones run no script).
      const auto ev = agent::parse_lifecycle_event(e.name);
      if (!ev || agent::is_reserved(*ev)) continue;
      if (!k.hook_events_seen.insert(e.name).second) continue;
      // Hooks that ended before this node started were not run by this process: remembered,
      // not counted.
      if (first_sight && !ours) continue;
      const double seconds = e.end_time >= e.start_time && e.start_time > 0
                                 ? static_cast<double>(e.end_time - e.start_time) / 1000.0
                                 : 0.0;
      hook_durations_.try_emplace(e.name, hook_duration_buckets()).first->second.observe(seconds);
      ++hook_runs_[{e.name, outcome_label(e.diag->error_code)}];
    }
  }
}

void rollout_metrics::mark_changed(const std::string& id) {
  std::lock_guard lock(mu_);
  changed_.insert(id);
}

std::vector<std::string> rollout_metrics::take_changed() {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids(changed_.begin(), changed_.end());
  changed_.clear();
  return ids;
}

void rollout_metrics::write(exposition& out) const {
  std::lock_guard lock(mu_);
  std::map<deploy::deployment_status, std::uint64_t> by_status;
  std::map<std::pair<std::string, std::string>, std::uint64_t> window;  // (app, group)
  for (const auto& [id, k] : deployments_) {
    ++by_status[k.status];
    if (!deploy::is_terminal(k.status)) window[{k.application, k.group}] += k.hosts_in_window;
  }
  out.family("meshdeploy_deployments", "gauge",
             "Deployments this node knows, by status (every status is listed, 0 included).");
  for (auto s : kDeploymentStatuses) {
    out.sample("meshdeploy_deployments", {{"status", std::string(deploy::to_string(s))}},
               by_status[s]);
  }
  out.family("meshdeploy_deployments_finished_total", "counter",
             "Deployments this node saw reach a final status since it started, by that status.");
  for (auto s : kDeploymentStatuses) {
    if (!deploy::is_terminal(s)) continue;
    const auto f = finished_.find(s);
    out.sample("meshdeploy_deployments_finished_total",
               {{"status", std::string(deploy::to_string(s))}},
               f == finished_.end() ? std::uint64_t{0} : f->second);
  }
  out.family("meshdeploy_rollout_hosts_in_window", "gauge",
             "Hosts inside the rollout window (InProgress) of open deployments, by application "
             "and deployment group, as this node sees them.");
  for (const auto& [key, n] : window) {
    out.sample("meshdeploy_rollout_hosts_in_window",
               {{"application", key.first}, {"group", key.second}}, n);
  }
  out.family("meshdeploy_hook_duration_seconds", "histogram",
             "Lifecycle events whose hooks this node ran, by event: from the event's start to "
             "its end (all its scripts).");
  for (const auto& [event, h] : hook_durations_) {
    h.write(out, "meshdeploy_hook_duration_seconds", {{"event", event}});
  }
  out.family("meshdeploy_hook_runs_total", "counter",
             "Lifecycle events whose hooks this node ran, by event and outcome (the agent's "
             "error code of the event's last script: Success, ScriptFailed, ...).");
  for (const auto& [key, n] : hook_runs_) {
    out.sample("meshdeploy_hook_runs_total", {{"event", key.first}, {"outcome", key.second}}, n);
  }
}

}  // namespace meshdeploy::node::metrics

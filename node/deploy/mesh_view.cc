#include "node/deploy/mesh_view.h"

#include "node/agent/lifecycle_event.h"

#include <fmt/format.h>

#include <algorithm>

namespace meshdeploy::deploy {

namespace {

host_status host_status_of(const std::string& phase) {
  if (phase == "entered") return host_status::in_progress;
  if (phase == "resolved") return host_status::succeeded;
  if (phase == "failed") return host_status::failed;
  if (phase == "skipped") return host_status::skipped;
  return host_status::pending;
}

std::vector<event_status> pending_events() {
  std::vector<event_status> events;
  for (agent::lifecycle_event e : agent::lifecycle_order()) {
    events.push_back(
        event_status{std::string(agent::to_string(e)), host_status::pending, 0, 0, {}});
  }
  return events;
}

std::vector<event_status> events_of(const records::progress_payload& p) {
  if (p.events.empty()) return pending_events();
  std::vector<event_status> out;
  for (const auto& e : p.events) {
    event_status s{e.name,
                   parse_host_status(e.status).value_or(host_status::unknown),
                   e.start_ms,
                   e.end_ms,
                   {}};
    if (!e.error_code.empty()) {
      s.diag = diagnostics{e.error_code, e.script, e.message, e.log_tail};
    }
    out.push_back(std::move(s));
  }
  return out;
}

bool resolved_or_excluded(const deployment_records& d, const std::string& host) {
  return phase_of(d, host) == "resolved" || d.excluded.count(host) != 0;
}

struct verdict_info {
  verdict v = verdict::running;
  std::vector<std::string> failed;
};

verdict_info judge(const deployment_records& d, const deployment_config& config) {
  verdict_info out;
  const auto& targets = d.intent.targets;
  host_tally t;
  t.targets = static_cast<std::uint32_t>(targets.size());
  for (const auto& h : targets) {
    const std::string phase = phase_of(d, h);
    if (phase == "resolved") {
      ++t.succeeded;
    } else if (phase == "failed" || d.excluded.count(h) != 0) {
      ++t.failed;
      out.failed.push_back(h);
    } else {
      ++t.pending;
    }
  }
  t.only_last_failed = t.failed == 1 && !targets.empty() && out.failed.front() == targets.back();
  out.v = targets.empty() ? verdict::failed : decide(config, t);
  return out;
}

}  // namespace

std::string phase_of(const deployment_records& d, const std::string& host) {
  auto it = d.progress.find(host);
  return it == d.progress.end() ? std::string() : it->second.phase;
}

admission admit(const std::vector<group_intent>& intents,
                const std::vector<records::approval_payload>& approvals) {
  admission out;
  std::set<std::string> decided;  // in the chain or lost
  std::string parent;
  for (std::size_t round = 0; round <= intents.size(); ++round) {
    struct candidate {
      const group_intent* intent;
      std::size_t votes = 0;
    };
    std::vector<candidate> competing;
    std::set<std::string> voters;  // hosts that approved some child of `parent`
    for (const auto& a : approvals) {
      if (a.parent == parent) voters.insert(a.host);
    }
    for (const auto& in : intents) {
      if (in.targets.empty() || decided.count(in.id) != 0) continue;
      std::set<std::string> for_it;
      for (const auto& a : approvals) {
        if (a.parent == parent && a.child == in.id &&
            std::find(in.targets.begin(), in.targets.end(), a.host) != in.targets.end()) {
          for_it.insert(a.host);
        }
      }
      if (!for_it.empty()) competing.push_back({&in, for_it.size()});
    }
    if (competing.empty()) break;
    auto earlier = [](const candidate& a, const candidate& b) {
      if (a.votes != b.votes) return a.votes > b.votes;
      if (a.intent->created != b.intent->created) return a.intent->created < b.intent->created;
      return a.intent->id < b.intent->id;
    };
    std::sort(competing.begin(), competing.end(), earlier);
    const candidate* winner = nullptr;
    for (const auto& c : competing) {
      if (2 * c.votes > c.intent->targets.size()) {
        winner = &c;
        break;
      }
    }
    if (winner == nullptr) {
      // Nobody has a majority: decide only once every competitor's targets have all voted.
      bool all_voted = true;
      for (const auto& c : competing) {
        for (const auto& t : c.intent->targets) all_voted = all_voted && voters.count(t) != 0;
      }
      if (!all_voted) break;
      winner = &competing.front();
    }
    const std::string won = winner->intent->id;
    out.chain.push_back(won);
    decided.insert(won);
    for (const auto& c : competing) {
      if (c.intent->id != won) {
        out.lost_to[c.intent->id] = won;
        decided.insert(c.intent->id);
      }
    }
    parent = won;
  }
  return out;
}

gate_decision gate(const deployment_records& d, const deployment_config& config,
                   const std::string& host) {
  if (d.stop || !d.lost_to.empty()) return gate_decision::skip;
  if (!d.admitted) return gate_decision::wait;
  if (judge(d, config).v != verdict::running) return gate_decision::skip;
  const auto& targets = d.intent.targets;
  const auto pos = std::find(targets.begin(), targets.end(), host);
  const std::uint32_t k = std::max<std::uint32_t>(1, d.intent.max_out_of_service);
  std::uint32_t unresolved = 0;
  for (auto it = targets.begin(); it != pos; ++it) {
    if (!resolved_or_excluded(d, *it)) ++unresolved;
  }
  return unresolved <= k - 1 ? gate_decision::enter : gate_decision::wait;
}

deployment_record view(const deployment_records& d, const deployment_config& config,
                       const std::string& group_id, const std::string& bundle_format) {
  deployment_record r;
  const auto& in = d.intent;
  r.id = in.deployment_id;
  r.application = in.app;
  r.group = in.group;
  r.group_id = group_id;
  r.revision = in.revision;
  r.bundle_format = bundle_format;
  r.config = in.config;
  r.creator = in.creator;
  r.file_exists_behavior = in.file_exists_behavior;
  r.ignore_stop_failures = in.ignore_stop_failures;
  r.create_time = d.created;
  bool any_report = false;
  bool inside_window = false;
  unix_ms last = d.created;
  for (const auto& h : in.targets) {
    host_progress hp{h, host_status::pending, pending_events()};
    if (auto it = d.progress.find(h); it != d.progress.end()) {
      any_report = true;
      hp.status = host_status_of(it->second.phase);
      hp.events = events_of(it->second);
      inside_window = inside_window || it->second.phase == "entered";
      for (const auto& e : it->second.events) last = std::max({last, e.start_ms, e.end_ms});
    }
    if (d.excluded.count(h) != 0 && hp.status != host_status::succeeded) {
      hp.status = host_status::unknown;
    }
    r.hosts.push_back(std::move(hp));
  }
  const verdict_info j = judge(d, config);
  if (!d.lost_to.empty()) {
    r.status = deployment_status::failed;
    r.error = error_information{
        "DEPLOYMENT_GROUP_BUSY",
        fmt::format("another deployment of group '{}', {}, was admitted first; this one never "
                    "ran (submit it again to deploy after it)",
                    in.group, d.lost_to)};
    r.complete_time = d.created;
  } else if (in.targets.empty()) {
    r.status = deployment_status::failed;
    r.error = error_information{"NO_INSTANCES",
                                fmt::format("no live host matched deployment group '{}' when the "
                                            "deployment was created",
                                            in.group)};
    r.complete_time = d.created;
  } else if (j.v == verdict::failed) {
    std::string hosts, interrupted;
    for (const auto& h : j.failed) {
      hosts += (hosts.empty() ? "" : ", ") + h;
      if (auto it = d.progress.find(h); it != d.progress.end()) {
        for (const auto& e : it->second.events) {
          if (e.message.rfind(interrupted_prefix, 0) == 0) interrupted = h + ": " + e.message;
        }
      }
    }
    r.status = deployment_status::failed;
    r.error = interrupted.empty()
                  ? error_information{"HEALTH_CONSTRAINTS",
                                      fmt::format("too many hosts failed for {} (minimum healthy "
                                                  "cannot be met): {}",
                                                  in.config, hosts)}
                  : error_information{"DEPLOYMENT_INTERRUPTED", interrupted};
    r.complete_time = last;
  } else if (j.v == verdict::succeeded) {
    r.status = deployment_status::succeeded;
    r.complete_time = last;
  } else if (d.stop && !inside_window) {
    r.status = deployment_status::stopped;
    r.error =
        error_information{"DEPLOYMENT_STOPPED",
                          d.stop->reason.empty() ? "the deployment was stopped" : d.stop->reason};
    r.complete_time = std::max(last, d.stopped_at);
  } else if (!d.admitted) {
    r.status = d.stop ? deployment_status::stopped : deployment_status::queued;
    if (d.stop) r.error = error_information{"DEPLOYMENT_STOPPED", "stopped before it started"};
  } else {
    r.status = any_report ? deployment_status::in_progress : deployment_status::created;
  }
  return r;
}

}  // namespace meshdeploy::deploy

#include "node/deploy/rollout/deployment_view.h"

#include "node/agent/lifecycle_event.h"

#include <fmt/format.h>

#include <algorithm>

namespace meshdeploy::deploy::rollout {

namespace {

struct tally {
  std::uint32_t n = 0;
  std::uint32_t resolved = 0;
  std::uint32_t failed = 0;  // failed (excluded hosts are counted apart)
  std::uint32_t excluded = 0;
  std::uint32_t failed_not_last = 0;  // OneAtATime's rule
  std::uint32_t settled = 0;
  std::uint32_t skipped = 0;
  // (host, message) of the first host in target order that skipped for that reason.
  std::optional<std::pair<std::string, std::string>> health_skip, timeout_skip;
  // (host, "Event: account") of the first failed host a crash cut short.
  std::optional<std::pair<std::string, std::string>> interrupted;
  std::vector<std::string> failed_hosts;  // in target order
  bool any_report = false;
};

// Tallies the hosts that have a record (progress or exclude): O(records), not O(targets), so a
// 10,000-host deployment is cheap to judge where few hosts reported.
tally count(const record_set& rs, const std::string& id, const intent_entry& e) {
  const auto& in = e.intent;
  tally t;
  t.n = static_cast<std::uint32_t>(in.targets.size());
  std::vector<std::pair<std::uint32_t, host_fact>> seen;  // position, fact
  auto consider = [&](const std::string& h) {
    const std::int64_t pos = e.position_of(h);
    if (pos >= 0) seen.emplace_back(static_cast<std::uint32_t>(pos), fact_of(rs, id, h));
  };
  if (const auto* m = rs.progress_of(id)) {
    for (const auto& [h, p] : *m) consider(h);
  }
  for (const auto& h : rs.excluded_hosts(id)) {
    if (rs.progress(id, h) == nullptr) consider(h);
  }
  std::sort(seen.begin(), seen.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [pos, f] : seen) {
    const std::string& h = in.targets[pos];
    if (f.outcome != host_outcome::pending) t.any_report = true;
    if (settled(f)) ++t.settled;
    switch (f.outcome) {
      case host_outcome::resolved:
        ++t.resolved;
        break;
      case host_outcome::failed:
        if (!t.interrupted) {
          if (const progress_entry* p = rs.progress(id, h)) {
            for (const auto& ev : p->progress.events) {
              if (ev.message.starts_with(interrupted_prefix)) {
                t.interrupted =
                    std::pair(h, ev.name + ": " + ev.message.substr(interrupted_prefix.size()));
                break;
              }
            }
          }
        }
        [[fallthrough]];
      case host_outcome::excluded:
        ++t.failed;
        if (pos + 1 != t.n) ++t.failed_not_last;
        t.failed_hosts.push_back(h);
        break;

      case host_outcome::skipped:
        ++t.skipped;
        if (f.skip_reason == skip_health && !t.health_skip) t.health_skip = {h, f.skip_message};
        if (f.skip_reason == skip_timed_out && !t.timeout_skip) {
          t.timeout_skip = {h, f.skip_message};
        }
        break;
      default:
        break;
    }
  }
  return t;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

outcome judge_with(const record_set& rs, const admission_state& s, const std::string& id,
                   const intent_entry& e, const tally& t) {
  const auto& in = e.intent;
  if (in.targets.empty()) {
    return {deployment_status::failed,
            error_information{"NO_INSTANCES",
                              fmt::format("no live host matched deployment group '{}' when the "
                                          "deployment was created",
                                          in.group)}};
  }
  if (auto it = s.lost_to.find(id); it != s.lost_to.end()) {
    return {deployment_status::failed,
            error_information{
                "DEPLOYMENT_GROUP_BUSY",
                fmt::format("deployment {} of group '{}' was admitted instead of this one (both "
                            "competed to follow '{}'); this one never ran, submit it again",
                            it->second, in.group, s.parent_of.at(it->second))}};
  }
  if (!s.admitted(id)) {
    const std::string latest = s.latest();
    if (!latest.empty() && rs.intent(latest) != nullptr && latest != id) {
      const intent_entry& li = *rs.intent(latest);
      const outcome o = judge_with(rs, s, latest, li, count(rs, latest, li));
      if (!is_terminal(o.status)) return {deployment_status::queued, std::nullopt};
    }
    return {deployment_status::created, std::nullopt};
  }
  const std::uint32_t need_ok = successes_needed(in);
  const bool one = config_of(in).type == min_healthy_type::one_at_a_time;
  const bool too_many = (one && t.failed_not_last > in.failure_budget) || t.n - t.failed < need_ok;
  if (too_many && t.interrupted) {
    // A host cut short by a crash: say so rather than only "too many failed".
    return {deployment_status::failed,
            error_information{
                "DEPLOYMENT_INTERRUPTED",
                fmt::format("{} was cut short: {}", t.interrupted->first, t.interrupted->second)}};
  }
  if (too_many) {
    return {deployment_status::failed,
            error_information{"HEALTH_CONSTRAINTS",
                              fmt::format("too many hosts failed for {} (minimum healthy can no "
                                          "longer be met): {}",
                                          in.config, join(t.failed_hosts))}};
  }
  if (t.health_skip) {
    return {deployment_status::failed,
            error_information{
                "HEALTH_CONSTRAINTS",
                fmt::format("{} (seen by {})", t.health_skip->second, t.health_skip->first)}};
  }
  if (t.timeout_skip) {
    return {deployment_status::failed,
            error_information{
                "DEPLOYMENT_TIMED_OUT",
                fmt::format("{} (seen by {})", t.timeout_skip->second, t.timeout_skip->first)}};
  }
  if (t.settled == t.n) {
    if (t.skipped > 0) {
      const auto* stop = rs.stop(id);
      return {deployment_status::stopped,
              error_information{"DEPLOYMENT_STOPPED", stop != nullptr && !stop->reason.empty()
                                                          ? stop->reason
                                                          : "the deployment was stopped"}};
    }
    if (t.resolved >= need_ok) return {deployment_status::succeeded, std::nullopt};
    if (t.interrupted) {
      return {deployment_status::failed,
              error_information{"DEPLOYMENT_INTERRUPTED",
                                fmt::format("{} was cut short: {}", t.interrupted->first,
                                            t.interrupted->second)}};
    }
    return {deployment_status::failed,
            error_information{"HEALTH_CONSTRAINTS",
                              fmt::format("only {} of {} hosts succeeded, {} needed: {} failed",
                                          t.resolved, t.n, need_ok, join(t.failed_hosts))}};
  }
  return {deployment_status::in_progress, std::nullopt};
}

host_status row_status(host_outcome o) {
  switch (o) {
    case host_outcome::pending:
      return host_status::pending;
    case host_outcome::inside:
      return host_status::in_progress;
    case host_outcome::resolved:
      return host_status::succeeded;
    case host_outcome::failed:
      return host_status::failed;
    case host_outcome::skipped:
      return host_status::skipped;
    case host_outcome::excluded:
      return host_status::unknown;
  }
  return host_status::unknown;
}

}  // namespace

host_fact fact_of(const record_set& rs, const std::string& id, const std::string& host) {
  host_fact f;
  const progress_entry* p = rs.progress(id, host);
  if (p != nullptr) {
    const auto& phase = p->progress.phase;
    if (phase == phase_entered) {
      f.outcome = host_outcome::inside;
      f.ran = true;
    } else if (phase == phase_resolved) {
      f.outcome = host_outcome::resolved;
      f.ran = true;
    } else if (phase == phase_failed) {
      f.outcome = host_outcome::failed;
      f.ran = true;
    } else if (phase == phase_skipped) {
      f.outcome = host_outcome::skipped;
      for (const auto& e : p->progress.events) {
        if (e.status != "Skipped" && e.status != "Pending") f.ran = true;
        if (e.status == "Skipped" && f.skip_reason.empty() && !e.error_code.empty()) {
          f.skip_reason = e.error_code;
          f.skip_message = e.message;
        }
      }
    }
  }
  if (rs.excluded(id, host)) f.outcome = host_outcome::excluded;
  return f;
}

std::uint32_t successes_needed(const records::intent_payload& in) {
  const deployment_config c = config_of(in);
  if (c.type == min_healthy_type::one_at_a_time) return 1;
  const auto n = static_cast<std::uint32_t>(in.targets.size());
  const std::uint32_t h = std::min(min_healthy_hosts(c, n), n);
  return std::max<std::uint32_t>(1, h > in.failure_budget ? h - in.failure_budget : 0);
}

bool settled(const host_fact& f) {
  return f.outcome == host_outcome::resolved || f.outcome == host_outcome::failed ||
         f.outcome == host_outcome::skipped || f.outcome == host_outcome::excluded;
}

deployment_config config_of(const records::intent_payload& in) {
  const auto n = static_cast<std::uint32_t>(in.targets.size());
  deployment_config c;
  c.name = in.config;
  if (canonical_config_name(in.config) == "OneAtATime") {
    c.type = min_healthy_type::one_at_a_time;
    c.builtin = true;
    return c;
  }
  const std::uint32_t k = std::clamp<std::uint32_t>(in.max_out_of_service, 1, std::max(n, 1u));
  c.type = min_healthy_type::host_count;
  c.value = n - std::min(k, n);
  return c;
}

outcome judge(const record_set& rs, const admission_state& s, const std::string& id) {
  const intent_entry& e = *rs.intent(id);
  return judge_with(rs, s, id, e, count(rs, id, e));
}

std::string deployment_creator_of(const records::intent_payload& intent) {
  if (!intent.creator.starts_with(node_creator_prefix)) return "user";
  return intent.rollback_of.empty() ? "autoscaling" : "codeDeployRollback";
}

deployment_record view(const record_set& rs, const admission_state& s, const std::string& id,
                       const view_context& ctx) {
  const intent_entry& e = *rs.intent(id);
  const auto& in = e.intent;
  deployment_record r;
  r.id = id;
  r.application = in.app;
  r.group = in.group;
  r.group_id = ctx.group_id;
  r.revision = in.revision;
  r.bundle_format = ctx.bundle_format;
  r.config = in.config;
  r.creator = in.creator;
  r.deployment_creator = deployment_creator_of(in);
  r.rollback_of = in.rollback_of;
  for (const auto& [other, oe] : rs.intents()) {
    // The earliest rollback of it, the same on every node that holds both.
    if (oe->intent.rollback_of == id && r.rolled_back_by.empty()) r.rolled_back_by = other;
  }
  r.file_exists_behavior = in.file_exists_behavior;
  r.ignore_stop_failures = in.ignore_stop_failures;
  r.create_time = e.created;
  const tally t = count(rs, id, e);
  unix_ms last = e.created;
  for (std::size_t i = 0; i < in.targets.size(); ++i) {
    host_progress hp{in.targets[i], row_status(fact_of(rs, id, in.targets[i]).outcome),
                     pending_lifecycle_events()};
    if (const progress_entry* p = rs.progress(id, in.targets[i]);
        p != nullptr && !p->progress.events.empty()) {
      hp.events.clear();
      for (const auto& ev : p->progress.events) {
        event_status es{ev.name, parse_host_status(ev.status).value_or(host_status::unknown),
                        ev.start_ms, ev.end_ms, std::nullopt};
        if (!ev.error_code.empty()) {
          es.diag = diagnostics{ev.error_code, ev.script, ev.message, ev.log_tail};
        } else if (es.status == host_status::in_progress) {
          es.message = ev.message;
        }
        last = std::max({last, ev.start_ms, ev.end_ms});
        hp.events.push_back(std::move(es));
      }
    }
    r.hosts.push_back(std::move(hp));
  }
  const outcome o = judge_with(rs, s, id, e, t);
  r.status = o.status;
  r.error = o.error;
  if (is_terminal(o.status)) r.complete_time = last;
  return r;
}

}  // namespace meshdeploy::deploy::rollout

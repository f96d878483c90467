#include "node/deploy/rollout/planning.h"

#include "node/deploy/rollout/deployment_view.h"
#include "node/deploy/rollout/gate.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <tuple>

namespace meshdeploy::deploy::rollout {

namespace {

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

bool targets_host(const intent_entry& e, const std::string& host) {
  return e.position_of(host) >= 0;
}

bool is_catch_up(const intent_entry& e) { return is_catch_up_intent(e.intent); }

}  // namespace

std::optional<revision_ref> last_successful_revision(const record_set& rs, const admission_state& s,
                                                     const std::string& before) {
  auto end = std::find(s.chain.begin(), s.chain.end(), before);
  for (auto it = std::make_reverse_iterator(end); it != s.chain.rend(); ++it) {
    const intent_entry* e = rs.intent(*it);
    if (e == nullptr) continue;
    if (judge(rs, s, *it).status == deployment_status::succeeded) {
      return revision_ref{*it, e->intent.revision};
    }
  }
  return std::nullopt;
}

std::optional<rollback_plan> auto_rollback_due(const record_set& rs, const admission_state& s,
                                               bool on_stop) {
  if (s.chain.empty()) return std::nullopt;
  const std::string& last = s.chain.back();
  const intent_entry* e = rs.intent(last);
  if (e == nullptr || !e->intent.rollback_of.empty()) return std::nullopt;
  const deployment_status st = judge(rs, s, last).status;
  if (st != deployment_status::failed && !(on_stop && st == deployment_status::stopped)) {
    return std::nullopt;
  }
  for (const auto& [id, other] : rs.intents()) {
    if (other->intent.rollback_of == last) return std::nullopt;
  }
  auto good = last_successful_revision(rs, s, last);
  if (!good) return std::nullopt;
  return rollback_plan{last, *good};
}

std::optional<revision_ref> catch_up(const record_set& rs, const admission_state& s,
                                     const std::string& host) {
  if (!s.chain.empty() && !is_terminal(judge(rs, s, s.chain.back()).status)) return std::nullopt;
  for (const auto& [id, e] : rs.intents()) {
    if (!s.admitted(id) && s.lost_to.count(id) == 0 && !e->intent.targets.empty()) {
      return std::nullopt;  // a queued deployment will come first
    }
  }
  // The anchor is the newest successful deployment that is not itself a catch-up: a catch-up
  // targets only its own host, so anchoring on one would make every other host catch up
  // again, each new catch-up the next anchor, forever (tests/chaos saw that cascade).
  std::optional<revision_ref> good;
  for (auto it = s.chain.rbegin(); it != s.chain.rend() && !good; ++it) {
    const intent_entry* e = rs.intent(*it);
    if (e == nullptr || is_catch_up(*e)) continue;
    if (judge(rs, s, *it).status == deployment_status::succeeded) {
      good = revision_ref{*it, e->intent.revision};
    }
  }
  if (!good) return std::nullopt;
  auto from = std::find(s.chain.begin(), s.chain.end(), good->deployment);
  for (auto it = from; it != s.chain.end(); ++it) {
    const intent_entry* e = rs.intent(*it);
    if (e == nullptr || !targets_host(*e, host)) continue;
    // It took part: resolved there (nothing to do) or it failed there (the group's next
    // deployment or a rollback deals with it, like any other failed host).
    return std::nullopt;
  }
  return good;
}

std::vector<std::string> order_targets(const record_set& rs, const admission_state& s,
                                       std::vector<std::string> hosts,
                                       const std::string& deployment_id) {
  std::vector<std::tuple<bool, std::uint64_t, std::string>> keyed;
  keyed.reserve(hosts.size());
  // A pretend position after the whole chain: out_of_service_before() walks back from there.
  admission_state probe = s;
  probe.chain.push_back(deployment_id);
  for (auto& h : hosts) {
    const bool unhealthy = out_of_service_before(rs, probe, deployment_id, h);
    keyed.emplace_back(!unhealthy, fnv1a(deployment_id + "/" + h), std::move(h));
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<std::string> out;
  out.reserve(keyed.size());
  for (auto& [healthy, hash, h] : keyed) out.push_back(std::move(h));
  return out;
}

std::vector<std::string> plan_electorate(const record_set& rs, const admission_state& s,
                                         const std::vector<std::string>& targets) {
  const std::set<std::string> now(targets.begin(), targets.end());
  std::set<std::string> out;
  for (auto it = s.chain.rbegin(); it != s.chain.rend(); ++it) {
    const intent_entry* e = rs.intent(*it);
    if (e == nullptr) continue;
    for (const auto& h : e->intent.targets) {
      if (now.count(h) == 0) out.insert(h);
    }
    if (!is_catch_up(*e)) break;
  }
  return {out.begin(), out.end()};
}

target_plan plan_targets(const record_set& rs, const admission_state& s,
                         std::vector<std::string> hosts, const std::string& deployment_id) {
  target_plan p;
  p.targets = order_targets(rs, s, std::move(hosts), deployment_id);
  p.electorate = plan_electorate(rs, s, p.targets);
  admission_state probe = s;  // a pretend position after the whole chain
  probe.chain.push_back(deployment_id);
  for (const auto& h : p.electorate) {
    if (out_of_service_before(rs, probe, deployment_id, h)) p.absent_out_of_service.push_back(h);
  }
  return p;
}

committee_reach reach_of(const std::string& app, const std::string& group, const target_plan& p) {
  records::intent_payload in;
  in.app = app;
  in.group = group;
  in.targets = p.targets;
  in.electorate = p.electorate;
  const std::vector<std::string> committee = admission_committee(in);
  const std::set<std::string> live(p.targets.begin(), p.targets.end());
  committee_reach r;
  r.committee = committee.size();
  for (const auto& h : committee) r.live += live.count(h);
  return r;
}

}  // namespace meshdeploy::deploy::rollout

#include "node/deploy/rollout/gate.h"

#include "node/deploy/rollout/deployment_view.h"

#include <fmt/format.h>

#include <algorithm>

namespace meshdeploy::deploy::rollout {

namespace {

bool resolution(const host_fact& f) {
  return f.outcome == host_outcome::resolved || f.outcome == host_outcome::excluded;
}

}  // namespace

bool out_of_service_before(const record_set& rs, const admission_state& s, const std::string& id,
                           const std::string& host, bool self) {
  auto pos = std::find(s.chain.begin(), s.chain.end(), id);
  // Newest first: the first deployment the host took part in decides.
  for (auto it = std::make_reverse_iterator(pos); it != s.chain.rend(); ++it) {
    const intent_entry* e = rs.intent(*it);
    if (e == nullptr) return true;  // cannot tell: assume the worst
    if (e->position_of(host) < 0) continue;
    const host_fact f = fact_of(rs, *it, host);
    // Only its own resolution makes a host healthy again. An exclude freed its token in that
    // deployment, but the host is still unknown, and it may not know it was excluded (it would
    // then enter the next deployment without a token): so others keep counting it.
    if (f.outcome == host_outcome::resolved) return false;
    if (f.outcome == host_outcome::excluded) return true;
    if (f.outcome == host_outcome::skipped && !f.ran) continue;  // never touched it
    // A host knows its own records (it publishes them, and its journal restores them after
    // a wiped data dir): no record of its own means it never entered.
    if (self && f.outcome == host_outcome::pending) continue;
    return true;  // entered, failed, stopped mid-way, or (another host) not heard of yet
  }
  return false;
}

gate_result gate(const record_set& rs, const admission_state& s, const std::string& id,
                 const std::string& host, const test_mutations& m,
                 const std::set<std::string>& dead) {
  gate_result r;
  const auto& in = rs.intent(id)->intent;
  if (rs.excluded(id, host)) {
    r.decision = gate_decision::skip;
    r.reason = skip_excluded;
    r.message = fmt::format("{} was excluded from deployment {} by an operator", host, id);
    return r;
  }
  if (s.lost_to.count(id) != 0) {
    r.decision = gate_decision::skip;
    r.reason = skip_stopped;
    r.message = fmt::format("deployment {} lost admission to {}", id, s.lost_to.at(id));
    return r;
  }
  if (!s.admitted(id)) return r;  // wait
  if (const auto* stop = rs.stop(id)) {
    r.decision = gate_decision::skip;
    r.reason = skip_stopped;
    r.message = stop->reason.empty()
                    ? fmt::format("deployment {} was stopped", id)
                    : fmt::format("deployment {} was stopped: {}", id, stop->reason);
    return r;
  }
  const outcome o = judge(rs, s, id);
  if (is_terminal(o.status)) {
    r.decision = gate_decision::skip;
    r.reason = o.status == deployment_status::stopped ? skip_stopped : skip_health;
    r.message = o.error ? o.error->message : "the deployment is over";
    return r;
  }
  const intent_entry& e = *rs.intent(id);
  const auto& targets = in.targets;
  const auto n = static_cast<std::uint32_t>(targets.size());
  const deployment_config c = config_of(in);
  const std::uint32_t k = max_out_of_service(c, n);
  // CodeDeploy's rules over this view (deploy::decide, plus exclusions): failed hosts keep
  // their tokens, so once they hold all K of them nobody else may start; nor when the minimum
  // is out of reach (deployment_view then says Failed too, or will once hosts settle). Only
  // hosts with a record are looked at: O(records), not O(targets).
  std::vector<std::pair<std::uint32_t, std::string>> holders;  // failed/stopped mid-way
  std::uint32_t resolved = 0, others = 0;
  auto consider = [&](const std::string& h) {
    const std::int64_t p = e.position_of(h);
    if (p < 0) return;
    const host_fact f = fact_of(rs, id, h);
    if (f.outcome == host_outcome::resolved) {
      ++resolved;
    } else if (f.outcome == host_outcome::excluded) {
      ++others;
    } else if (f.outcome == host_outcome::failed || (f.outcome == host_outcome::skipped && f.ran)) {
      holders.emplace_back(static_cast<std::uint32_t>(p), h);
      ++others;
    }
  };
  if (const auto* progress = rs.progress_of(id)) {
    for (const auto& [h, p] : *progress) consider(h);
  }
  for (const auto& h : rs.excluded_hosts(id)) {
    if (rs.progress(id, h) == nullptr) consider(h);
  }
  const std::uint32_t pending = n - resolved - others;
  const bool out_of_reach = resolved + pending < successes_needed(in);
  if (out_of_reach || (pending > 0 && holders.size() >= k)) {
    r.decision = gate_decision::skip;
    r.reason = skip_health;
    std::sort(holders.begin(), holders.end());
    std::string list;
    for (const auto& [p, h] : holders) list += (list.empty() ? "" : ", ") + h;
    r.message = fmt::format(
        "{}: failed hosts {} (K={}): {}", in.config,
        out_of_reach ? "leave too few to meet the minimum" : "hold all the rollout tokens", k,
        list);
    return r;
  }
  const auto pos = static_cast<std::uint32_t>(e.position_of(host));
  const std::uint32_t limit = m.gate_allows_k_blockers ? k : k - 1;
  const bool first = s.parent_of.at(id).empty();
  // Electorate hosts (left out of the plan) that may be out of service from before block
  // every target: this deployment will not bring them back.
  std::vector<std::string> absent_out;
  if (!first && !is_catch_up_intent(in)) {
    for (const auto& h : in.electorate) {
      if (out_of_service_before(rs, s, id, h)) absent_out.push_back(h);
    }
  }
  // At most `pos` earlier blockers and n-1 in all: no need to look when that is within the
  // limit (AllAtOnce, the first K positions of a first deployment).
  if (n - 1 + absent_out.size() <= limit || (first && pos <= limit)) {
    r.decision = gate_decision::enter;
    return r;
  }
  // A host still out of service from an earlier deployment (it failed there) does not wait
  // for earlier hosts that are healthy and have not started: its entering adds nobody to the
  // hosts out of service, unless an operator fenced it off (excluded it) without it knowing,
  // and every other host already counts it (see docs/rollout.md, "Hosts out of service from
  // an earlier deployment"). Without this, a failed host at a late position would deadlock.
  const bool self_out = !first && out_of_service_before(rs, s, id, host, /*self=*/true);
  for (std::uint32_t i = 0; i < n; ++i) {
    if (i == pos) continue;
    const host_fact f = fact_of(rs, id, targets[i]);
    if (resolution(f)) continue;
    if (m.free_token_on_dead && dead.count(targets[i]) != 0) continue;
    const bool started = f.ran || f.outcome == host_outcome::inside;
    const bool prior = !first && out_of_service_before(rs, s, id, targets[i]);
    bool blocks = false;
    if (i < pos) {
      blocks = self_out ? started || prior : !m.count_only_started || started;
    } else {
      blocks = prior || (self_out && started);
    }
    if (blocks) r.blockers.push_back(targets[i]);
  }
  r.blockers.insert(r.blockers.end(), absent_out.begin(), absent_out.end());
  r.decision = r.blockers.size() <= limit ? gate_decision::enter : gate_decision::wait;
  return r;
}

}  // namespace meshdeploy::deploy::rollout

// Pure decisions the node acts on around the rollout (docs/rollout.md "Rollback, catch-up,
// ordering"): which revision a rollback or a catch-up deploys, whether an automatic rollback is
// due, and the order of a new intent's targets. The node signs and publishes the results.
#pragma once

#include "node/deploy/rollout/admission.h"
#include "node/deploy/rollout/record_set.h"

#include <optional>
#include <string>
#include <vector>

namespace meshdeploy::deploy::rollout {

struct revision_ref {
  std::string deployment;  // the deployment that succeeded with it
  std::string revision;
};

// The newest admitted deployment before `before` (the whole chain when "" or unknown) whose
// status is Succeeded in this view.
std::optional<revision_ref> last_successful_revision(const record_set& rs, const admission_state& s,
                                                     const std::string& before = "");

struct rollback_plan {
  std::string rolls_back;  // the failed (or stopped) deployment; goes in intent.rollback_of
  revision_ref target;     // what to deploy
};

// An automatic rollback is due when the newest admitted deployment ended Failed (or Stopped,
// when `on_stop`), is not itself a rollback, no intent rolls it back yet, and an earlier
// revision succeeded. REQUIRES: s == admit(rs).
std::optional<rollback_plan> auto_rollback_due(const record_set& rs, const admission_state& s,
                                               bool on_stop = false);

// Catch-up (CodeDeploy's Auto Scaling behaviour): when `host` newly matches the group, the
// revision it should deploy to itself: that of the last successful deployment that is not a
// catch-up, if the host was not a target of it or of any later intent (its own catch-up
// included), and nothing is running in the group (a host that is a target of the running
// deployment gets the revision from it).
std::optional<revision_ref> catch_up(const record_set& rs, const admission_state& s,
                                     const std::string& host);

// Rollout order for a new intent `deployment_id` over `hosts`: hosts that may be out of
// service from the group's newest deployment they took part in (failed, cut short, unknown)
// first, as CodeDeploy deploys unhealthy hosts first, then by FNV-1a(deployment id, host).
std::vector<std::string> order_targets(const record_set& rs, const admission_state& s,
                                       std::vector<std::string> hosts,
                                       const std::string& deployment_id);

// The electorate of a new intent over `targets` (records::intent_payload::electorate): the
// targets of the group's newest admitted deployments, back to and including the newest that is
// not a catch-up, that are not in `targets`; sorted. A host absent from two plans in a row
// drops out (so a host gone for good stops counting after one deployment).
std::vector<std::string> plan_electorate(const record_set& rs, const admission_state& s,
                                         const std::vector<std::string>& targets);

// What a plan puts in a new intent: the ordered targets and the electorate.
struct target_plan {
  std::vector<std::string> targets;
  std::vector<std::string> electorate;
  // Electorate hosts that may still be out of service from before (failed or cut short in the
  // newest deployment they took part in): each holds one of the new deployment's K tokens until
  // it is healthy again (gate.h), so the operator is told.
  std::vector<std::string> absent_out_of_service;
};

// order_targets and plan_electorate together.
target_plan plan_targets(const record_set& rs, const admission_state& s,
                         std::vector<std::string> hosts, const std::string& deployment_id);

// How many of the admission committee of an intent with this plan are `live` (targets are
// live by construction). The committee can admit the intent without the absent members only
// when 2 * live > committee.
struct committee_reach {
  std::size_t committee = 0;
  std::size_t live = 0;
  bool majority() const { return 2 * live > committee; }
};
committee_reach reach_of(const std::string& app, const std::string& group, const target_plan& p);

}  // namespace meshdeploy::deploy::rollout

// The rollout gate (the tokens; docs/rollout.md "Gate" and the safety argument there).
//
// The target at position p of an admitted deployment D enters the update window only when, in
// its own view: no stop was seen, D is not over (deployment_view's judge()), CodeDeploy's
// failure rules (deploy::decide) still let the deployment run, and at most K-1 hosts block it.
// Blockers are the targets of D with no resolution in D (resolved, or excluded by an operator)
// that are
//   - at an earlier position than p (failed, silent and not-yet-started hosts included), or
//   - at a later position but possibly still out of service from an earlier deployment of the
//     group: in the newest chain deployment before D that it took part in, it did not resolve
//     (entered, failed, stopped mid-way, excluded, or no record seen yet).
// The intent's electorate (hosts of the previous deployment the plan left out) that may still be
// out of service from before block every target too: D will not bring them back, so they hold
// their tokens; `deploy --ignore-absent-hosts` plans without them. Not for a catch-up (one
// host catching up to the group's revision): waiting there would hold every later deployment
// of the group behind it until the absent host is back (chaos seed 2 saw that deadlock).
// A host that is itself still out of service from an earlier deployment (in its own view)
// counts instead: earlier targets that started or may be out of service from before, and
// later targets that started in D or may be out of service from before; it does not wait for
// healthy earlier hosts that have not started, so a failed host at a late position cannot
// deadlock the next deployment.
// Nothing here frees a token: not time, not SWIM saying a host is dead.
//
// Pure; no clocks, no I/O.
#pragma once

#include "node/deploy/rollout/admission.h"
#include "node/deploy/rollout/record_set.h"
#include "node/deploy/rollout/test_mutations.h"

#include <set>
#include <string>
#include <vector>

namespace meshdeploy::deploy::rollout {

enum class gate_decision {
  wait,   // not yet (not admitted, or too many blockers)
  enter,  // the host may enter the update window now
  skip,   // never: the host publishes skipped with `reason` (deployment_view.h codes)
};

struct gate_result {
  gate_decision decision = gate_decision::wait;
  std::string reason;                 // for skip: skip_stopped, skip_health, skip_excluded
  std::string message;                // for skip: why, naming the stop or the failed hosts
  std::vector<std::string> blockers;  // for wait: the hosts it waits on (in position order)
};

// The gate for `host` in deployment `id`. `dead` is what the membership layer says is dead;
// the correct gate ignores it (the parameter exists for the free_token_on_dead mutant).
// REQUIRES: rs.intent(id) != nullptr; s == admit(rs); host is a target of the intent.
gate_result gate(const record_set& rs, const admission_state& s, const std::string& id,
                 const std::string& host, const test_mutations& m = {},
                 const std::set<std::string>& dead = {});

// True when `host` may still be out of service from a chain deployment before `id` (see above).
// `self`: the caller is `host` itself, which knows its own records, so "no record" means it
// never entered (for another host it means "not heard of yet": assume the worst).
bool out_of_service_before(const record_set& rs, const admission_state& s, const std::string& id,
                           const std::string& host, bool self = false);

}  // namespace meshdeploy::deploy::rollout

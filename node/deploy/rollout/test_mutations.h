// TEST-ONLY planted bugs for the rollout core. Production code never sets any of these; the
// simulator's mutant test (tests/sim/rollout_sim_test.cc) switches each one on to prove that
// the invariant checker catches it within 1,000 seeds. All default to false (correct code).
#pragma once

namespace meshdeploy::deploy::rollout {

struct test_mutations {
  bool gate_allows_k_blockers = false;   // gate enters with K unresolved blockers (<= K)
  bool free_token_on_dead = false;       // hosts SWIM calls dead stop counting as blockers
  bool count_only_started = false;       // only earlier hosts known to have entered block
  bool resolve_before_validate = false;  // publish resolved when ValidateService starts
  bool skip_journal_sync = false;        // persist "entered" without syncing it
  bool plan_without_electorate = false;  // (simulator's planner) committees = live targets only
  bool ignore_own_entered = false;       // a host's own "entered" record does not stop re-entry
  // After a lost journal: vote while unsettled, and do not adopt its own approvals from peers.
  bool revote_after_lost_journal = false;

  bool any() const {
    return gate_allows_k_blockers || free_token_on_dead || count_only_started ||
           resolve_before_validate || skip_journal_sync || plan_without_electorate ||
           ignore_own_entered || revote_after_lost_journal;
  }
};

}  // namespace meshdeploy::deploy::rollout

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

  bool any() const {
    return gate_allows_k_blockers || free_token_on_dead || count_only_started ||
           resolve_before_validate || skip_journal_sync;
  }
};

}  // namespace meshdeploy::deploy::rollout

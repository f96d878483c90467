// The rollout core under the simulator (label sim): invariants over many seeds, the planted
// bugs each caught within 1,000 seeds, and the 100,000-seed soak (label soak, via
// MESHDEPLOY_ROLLOUT_SEEDS).
#include "tests/sim/rollout_sim.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <ostream>
#include <string>

namespace meshdeploy::sim {
namespace {

std::uint64_t seeds_from_env(std::uint64_t fallback) {
  const char* v = std::getenv("MESHDEPLOY_ROLLOUT_SEEDS");
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

TEST(RolloutSimTest, SameSeedReplaysExactly) {
  rollout_sim_options o;
  o.seed = 42;
  auto a = run_rollout_sim(o);
  auto b = run_rollout_sim(o);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.deliveries, b.deliveries);
  EXPECT_EQ(a.final_status, b.final_status);
  EXPECT_EQ(a.all_terminal_ms, b.all_terminal_ms);
}

TEST(RolloutSimTest, FaultFreeOneAtATimeSucceedsOneHostAtATime) {
  rollout_sim_options o;
  o.seed = 7;
  o.hosts = 6;
  o.config = "OneAtATime";
  o.deployments = 2;
  o.faults = false;
  o.hook_fail = 0;
  auto r = run_rollout_sim(o);
  ASSERT_TRUE(r.violations.empty()) << r.violations.front();
  ASSERT_EQ(r.final_status.size(), 2u);
  for (const auto& [id, st] : r.final_status) {
    EXPECT_EQ(st, deploy::deployment_status::succeeded) << id;
  }
  EXPECT_EQ(r.max_out_of_service, 1u);
  EXPECT_EQ(r.enters, 12u);
}

TEST(RolloutSimTest, FaultFreeHalfAtATimeUsesItsK) {
  rollout_sim_options o;
  o.seed = 8;
  o.hosts = 8;
  o.config = "HalfAtATime";
  o.deployments = 1;
  o.faults = false;
  o.hook_fail = 0;
  auto r = run_rollout_sim(o);
  ASSERT_TRUE(r.violations.empty()) << r.violations.front();
  EXPECT_EQ(r.k, 4u);
  EXPECT_EQ(r.max_out_of_service, 4u);  // the tokens are used, never exceeded
}

// CI: at least 2,000 seeds with random faults, sizes and configs; every invariant on every
// step. The soak label runs the same test with MESHDEPLOY_ROLLOUT_SEEDS=100000.
TEST(RolloutSimTest, InvariantsHoldOverManySeeds) {
  const std::uint64_t seeds = seeds_from_env(2000);
  const auto start = std::chrono::steady_clock::now();
  std::map<deploy::deployment_status, int> outcomes;
  std::size_t max_oos_seen_at_k = 0;
  std::uint64_t journals_lost = 0, reentries = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    rollout_sim_options o;
    o.seed = seed;
    auto r = run_rollout_sim(o);
    ASSERT_TRUE(r.violations.empty()) << r.violations.front();
    for (const auto& [id, st] : r.final_status) ++outcomes[st];
    if (r.max_out_of_service == r.k) ++max_oos_seen_at_k;
    journals_lost += r.journals_lost;
    reentries += r.reentries_unknowable;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string summary;
  for (const auto& [st, n] : outcomes)
    summary += std::string(deploy::to_string(st)) + "=" + std::to_string(n) + " ";
  std::printf(
      "%llu seeds in %.1f s; outcomes: %s; runs that used all K tokens: %zu; restarts without "
      "the journal: %llu (re-entries nothing could prevent: %llu)\n",
      static_cast<unsigned long long>(seeds), secs, summary.c_str(), max_oos_seen_at_k,
      static_cast<unsigned long long>(journals_lost), static_cast<unsigned long long>(reentries));
  // The runs are not all trivial: every terminal kind occurs.
  EXPECT_GT(outcomes[deploy::deployment_status::succeeded], 0);
  EXPECT_GT(outcomes[deploy::deployment_status::failed], 0);
  EXPECT_GT(outcomes[deploy::deployment_status::stopped], 0);
  EXPECT_GT(journals_lost, 0u);  // the lost-journal recovery is exercised
}

// The target: AllAtOnce to 10,000 hosts in under 5 s of simulated time with no-op
// hooks (1 ms per event). Records take ceil(log9(N)) = 5 gossip hops of 1-5 ms each (the
// replicator's push with fanout ~ ln N + 2); progress goes to the observer only (see
// rollout_sim.h); no faults. Prints what bench/RESULTS.md records.
TEST(RolloutSimTest, AllAtOnceToTenThousandHostsWithinFiveSimulatedSeconds) {
  rollout_sim_options o;
  o.seed = 1;
  o.hosts = 10'000;
  o.config = "AllAtOnce";
  o.deployments = 1;
  o.faults = false;
  o.hook_fail = 0;
  o.hook_min_ms = 1;
  o.hook_max_ms = 1;
  o.hops = 5;
  o.progress_to_all = false;
  o.check_every_step = false;
  const auto start = std::chrono::steady_clock::now();
  auto r = run_rollout_sim(o);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(r.violations.empty()) << r.violations.front();
  ASSERT_EQ(r.final_status.size(), 1u);
  EXPECT_EQ(r.final_status.begin()->second, deploy::deployment_status::succeeded);
  EXPECT_EQ(r.enters, 10'000u);
  const std::int64_t took = r.all_terminal_ms - r.first_submit_ms;
  std::printf(
      "AllAtOnce N=10000: Succeeded %lld ms simulated after submit; %llu events, %llu "
      "deliveries, %.1f s wall\n",
      static_cast<long long>(took), static_cast<unsigned long long>(r.events),
      static_cast<unsigned long long>(r.deliveries), wall);
  EXPECT_LT(took, 5000);
}

struct mutant {
  const char* name;
  void (*set)(deploy::rollout::test_mutations&);
};

void PrintTo(const mutant& m, std::ostream* os) { *os << m.name; }

class RolloutMutantTest : public ::testing::TestWithParam<mutant> {};

TEST_P(RolloutMutantTest, PlantedBugIsCaughtWithin1000Seeds) {
  const mutant& m = GetParam();
  std::uint64_t caught_at = 0;
  std::string what;
  for (std::uint64_t seed = 1; seed <= 1000 && caught_at == 0; ++seed) {
    rollout_sim_options o;
    o.seed = seed;
    m.set(o.mutations);
    auto r = run_rollout_sim(o);
    if (!r.violations.empty()) {
      caught_at = seed;
      what = r.violations.front();
    }
  }
  ASSERT_NE(caught_at, 0u) << m.name << " was not caught in 1,000 seeds";
  std::printf("%s: caught at seed %llu: %s\n", m.name, static_cast<unsigned long long>(caught_at),
              what.c_str());
}

INSTANTIATE_TEST_SUITE_P(
    Mutants, RolloutMutantTest,
    ::testing::Values(
        mutant{"GateOfK",
               [](deploy::rollout::test_mutations& t) { t.gate_allows_k_blockers = true; }},
        mutant{"FreeTokenOnDead",
               [](deploy::rollout::test_mutations& t) { t.free_token_on_dead = true; }},
        mutant{"CountOnlyStarted",
               [](deploy::rollout::test_mutations& t) { t.count_only_started = true; }},
        mutant{"ResolveBeforeValidate",
               [](deploy::rollout::test_mutations& t) { t.resolve_before_validate = true; }},
        // A lost "entered" is mostly repaired by the host's own entered record coming back
        // from peers (host_driver); with that rule off too, the double entry shows.
        mutant{"SkipJournalSync",
               [](deploy::rollout::test_mutations& t) {
                 t.skip_journal_sync = true;
                 t.ignore_own_entered = true;
               }},
        mutant{"PlanWithoutElectorate",
               [](deploy::rollout::test_mutations& t) { t.plan_without_electorate = true; }},
        mutant{"RevoteAfterLostJournal",
               [](deploy::rollout::test_mutations& t) { t.revote_after_lost_journal = true; }}),
    [](const ::testing::TestParamInfo<mutant>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace meshdeploy::sim

namespace meshdeploy::sim {
namespace {

// Replays one seed (MESHDEPLOY_ROLLOUT_SEED; trace with MESHDEPLOY_ROLLOUT_TRACE=1). Skipped
// unless the seed is given: a debugging aid, not a check.
TEST(RolloutSimTest, ReplayOneSeed) {
  const char* v = std::getenv("MESHDEPLOY_ROLLOUT_SEED");
  if (v == nullptr) GTEST_SKIP() << "set MESHDEPLOY_ROLLOUT_SEED";
  rollout_sim_options o;
  o.seed = std::strtoull(v, nullptr, 10);
  auto r = run_rollout_sim(o);
  for (const auto& x : r.violations) std::printf("violation: %s\n", x.c_str());
  for (const auto& [id, st] : r.final_status) {
    std::printf("%s %s\n", id.c_str(), std::string(deploy::to_string(st)).c_str());
  }
  std::printf("hosts %zu K %u events %llu\n", r.hosts, r.k,
              static_cast<unsigned long long>(r.events));
}

}  // namespace
}  // namespace meshdeploy::sim

// A deterministic simulator for the pure rollout core (node/deploy/rollout/, docs/rollout.md
// "Simulator"): N target hosts, each a rollout::host_driver, on virtual time (ms) with one
// seeded std::mt19937_64, so a run replays exactly by seed.
//
// Model. Records spread by direct push to every node with latency (`hops` draws of base +
// uniform jitter each), loss, and a partition between two sides; pull anti-entropy every
// sync interval repairs what was lost once the partition heals. Hooks run as simulated events
// of random length that can fail (ApplicationStop .. ValidateService). Faults, all inside a
// fault window: loss, partitions (one of them may isolate a submitting node right after it
// submits, or just before it plans over its own view), crashes at random or mid-hook, restarts with
// or without the data dir (the host journal survives half of the wipes; a crash loses the journal
// writes not yet synced and the peer records received in the last 200 ms; a host restarted
// without its journal enters and votes nothing until it holds the same records as a peer it
// pulls from, or 30 s passed, as the node's empty-data-dir rule), long pauses (SIGSTOP: input is
// held), operator stops, operator excludes of a crashed host, and two submissions to the group at
// the same moment through two nodes.
//
// Checked on every step (unless check_every_step is off): hosts out of service (ground truth:
// from the start of execution until ValidateService really succeeded; an operator exclude
// fences a host until it runs again) <= K across all deployments of the group; no host starts
// executing a deployment twice; at every node a terminal status never changes while its record
// set only grows; nodes with equal record sets compute equal statuses (every second); after
// the faults heal every deployment is terminal at every node.
#pragma once

#include "node/deploy/rollout/test_mutations.h"
#include "node/deploy/status.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace meshdeploy::sim {

struct rollout_sim_options {
  std::uint64_t seed = 1;
  std::size_t hosts = 0;  // 0: random in [3, 9]
  // OneAtATime | HalfAtATime | AllAtOnce | Custom (K = custom_k, random when 0); "": random.
  std::string config;
  std::uint32_t custom_k = 0;
  int deployments = 0;  // sequential submissions; 0: random in [1, 3]
  bool faults = true;
  double loss = -1;  // message loss while faults last; < 0: random in [0, 0.2]
  deploy::rollout::test_mutations mutations;  // TEST ONLY planted bugs
  bool check_every_step = true;
  // true: a submitter plans over the hosts on its side of a partition (crashed hosts stay
  // targets: a crash here is shorter than SWIM's dead timeout), and one isolated as it submits
  // is, half the time, cut off just before it plans (a stale view right after a split, chaos
  // seed 11) and plans over itself alone; the hosts it cannot reach go into the intent's
  // electorate. false: every plan targets every host.
  bool plan_over_view = true;
  // false (bench): progress records go only to the observer, not to every host; hosts then
  // decide from intents and approvals alone (valid for AllAtOnce, whose gate needs no
  // progress of others).
  bool progress_to_all = true;
  std::int64_t latency_base_ms = 1;
  std::int64_t latency_jitter_ms = 4;
  int hops = 1;  // gossip hops a record takes to reach a node
  std::int64_t hook_min_ms = 20;
  std::int64_t hook_max_ms = 300;
  double hook_fail = 0.08;  // chance a host's run fails (at a random event)
  std::int64_t progress_deadline_ms = 120'000;
  std::int64_t fault_window_ms = 20'000;
  std::int64_t horizon_ms = 600'000;  // a run still not terminal by then is a violation
};

struct rollout_sim_result {
  std::vector<std::string> violations;  // empty: every invariant held
  // Final status of each deployment at the observer (a node holding every record).
  std::map<std::string, deploy::deployment_status> final_status;
  std::int64_t first_submit_ms = 0;
  std::int64_t all_terminal_ms = -1;  // when the observer saw every deployment terminal
  std::size_t max_out_of_service = 0;
  std::uint32_t k = 0;
  std::size_t hosts = 0;
  std::uint64_t events = 0;
  std::uint64_t deliveries = 0;
  std::uint64_t enters = 0;
  // Re-entries by a host that lost its journal while its "entered" record had reached no other
  // node (nothing could tell it; the documented limit, docs/rollout.md): counted, not violations.
  std::uint64_t reentries_unknowable = 0;
  std::uint64_t journals_lost = 0;  // restarts without the data dir and the host journal
};

rollout_sim_result run_rollout_sim(const rollout_sim_options& options);

}  // namespace meshdeploy::sim

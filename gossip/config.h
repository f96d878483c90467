// Protocol parameters of the SWIM + Lifeguard core, with two named profiles.
// docs/gossip.md explains every value and why it was chosen.
#pragma once

#include <chrono>
#include <cstddef>

namespace meshdeploy::gossip {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using duration = clock::duration;

struct config {
  // Failure detection (SWIM).
  // The defaults are the `lan` profile's values.
  duration probe_interval =
      std::chrono::milliseconds(500);  // one probe per interval, scaled by awareness
  duration probe_timeout =
      std::chrono::milliseconds(200);  // wait for a direct ack, then go indirect
  std::size_t indirect_checks = 3;     // k members asked to ping the target
  bool tcp_fallback_probe = true;  // also probe over the stream channel when the direct ping fails

  // Suspicion (Lifeguard): min = suspicion_mult * max(1, log10(N)) * probe_interval, max =
  // suspicion_max_mult * min; the timeout shrinks from max to min as independent confirmations
  // (suspicion_mult - 2 of them) arrive.
  unsigned suspicion_mult = 3;
  unsigned suspicion_max_mult = 6;

  // Local health awareness (Lifeguard): probe interval and timeout are multiplied by
  // (score + 1), score in [0, awareness_max_multiplier).
  int awareness_max_multiplier = 8;

  // Dissemination: each broadcast is sent retransmit_mult * ceil(log10(N + 1)) times, piggybacked
  // on probes and acks and pushed to gossip_nodes random members every gossip_interval.
  unsigned retransmit_mult = 4;
  duration gossip_interval = std::chrono::milliseconds(200);
  std::size_t gossip_nodes = 3;
  duration gossip_to_dead = std::chrono::seconds(30);  // dead members still get gossip, to refute

  // Anti-entropy: every push_pull_interval a digest goes to one random member over the stream
  // channel; full state is exchanged only when digests differ. Zero disables it.
  duration push_pull_interval = std::chrono::seconds(15);

  // Forgetting: dead and left members are removed from the member list after this long.
  duration dead_reap_after = std::chrono::seconds(60);
  duration left_reap_after = std::chrono::seconds(60);

  // Bounds on memory held for peers.
  std::size_t max_queued_broadcasts = 1024;  // oldest-most-transmitted dropped beyond this
  std::size_t user_dedupe_window = 4096;     // remembered user broadcast ids

  // A data-centre LAN: sub-millisecond RTT, rare loss. See docs/gossip.md.
  static config lan();
  // One machine or a fast test network (loopback, containers): everything faster.
  static config local();
};

}  // namespace meshdeploy::gossip

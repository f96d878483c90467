// Counters kept by membership, exported by the node (GET /metrics).
#pragma once

#include <cstdint>

namespace meshdeploy::gossip {

struct metrics {
  // Traffic, as handed to / received from the transport (before any encryption layer).
  std::uint64_t packets_in = 0;
  std::uint64_t packets_out = 0;
  std::uint64_t packet_bytes_in = 0;
  std::uint64_t packet_bytes_out = 0;
  std::uint64_t streams_in = 0;
  std::uint64_t streams_out = 0;
  std::uint64_t stream_bytes_in = 0;
  std::uint64_t stream_bytes_out = 0;

  // Input dropped, by reason. Dropped input changes no state.
  std::uint64_t dropped_malformed = 0;     // does not decode
  std::uint64_t dropped_too_large = 0;     // over a size limit
  std::uint64_t dropped_unknown_type = 0;  // type unknown or not allowed on the channel
  std::uint64_t dropped_version = 0;       // protocol version outside our range
  std::uint64_t dropped_wrong_target = 0;  // a probe for another node name
  std::uint64_t dropped_incompatible = 0;  // alive from a node with no common protocol version

  // Failure detection.
  std::uint64_t probes_sent = 0;
  std::uint64_t probes_failed = 0;         // no ack, direct or indirect, within the round
  std::uint64_t indirect_probes_sent = 0;  // ping_req messages
  std::uint64_t fallback_probes_sent = 0;  // pings over the stream channel
  std::uint64_t nacks_received = 0;
  std::uint64_t suspicions_raised = 0;      // this node accused a member
  std::uint64_t suspicions_refuted = 0;     // this node refuted a suspicion about itself
  std::uint64_t members_declared_dead = 0;  // this node's suspicion timer expired

  // Anti-entropy.
  std::uint64_t digests_sent = 0;
  std::uint64_t push_pulls_sent = 0;

  // Direct messages for the layers above (membership::send_user).
  std::uint64_t directs_sent = 0;
  std::uint64_t directs_received = 0;

  // Broadcast queue depth after the last entry point returned.
  std::uint64_t broadcast_queue_depth = 0;
};

}  // namespace meshdeploy::gossip

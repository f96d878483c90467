// A deterministic simulator for the swarm (node/swarm/swarm.h, docs/swarm.md "Simulator"): N
// nodes each running the real swarm state machine on virtual time, one seeded std::mt19937_64,
// so a run replays exactly by seed.
//
// Model. Node 0 is the origin and holds the bundle; every other node starts fetching at time 0
// (it saw the intent). Each node has an uplink of `uplink_bytes_per_s` shared fairly by the
// messages it sends to different peers (processor sharing across per-peer FIFO queues, like TCP
// connections behind one shaped link; messages to one peer stay in order), then `latency`;
// downlinks are not limited. Each message is lost with probability `loss` (a broken connection).
// Faults: `leavers` non-origin nodes crash at random moments in [0, S/B] (the others learn it
// `detect_after` later, like gossip's failure detection); `corrupt` nodes serve every piece with
// a byte flipped. Pieces are held in memory as bits over one shared copy of the bundle (a
// stored piece is compared with the true bytes, so a bad piece that got through is counted).
#pragma once

#include "node/swarm/swarm.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace meshdeploy::sim {

struct swarm_sim_options {
  std::uint64_t seed = 1;
  std::size_t nodes = 16;  // the origin included
  std::uint64_t bundle_bytes = 4u << 20;
  std::uint32_t piece_size = 16u * 1024u;
  // 16 KiB pieces at 390 kB/s take 42 ms, like 256 KiB pieces at 50 Mbit/s.
  double uplink_bytes_per_s = 390'000;
  std::chrono::microseconds latency{500};
  double loss = 0;
  std::size_t leavers = 0;
  std::size_t corrupt = 0;
  std::chrono::milliseconds detect_after{5000};
  std::chrono::seconds limit{900};  // virtual time
  swarm::swarm_config config;       // per node (seed replaced per node)
};

struct swarm_sim_result {
  std::vector<double> done_s;  // completion time of each honest non-origin node that lived
  std::size_t expected = 0;    // how many that is
  std::size_t failed = 0;      // downloads that reported an error
  std::string first_error;     // the first of them
  double s_over_b = 0;         // bundle size over one uplink
  double t_star = 0;           // S/B + (ceil(log2(N+1)) - 1) * c/B
  std::uint64_t origin_upload_bytes = 0;
  std::uint64_t total_upload_bytes = 0;
  std::uint64_t pieces_rejected = 0;  // bad pieces caught by honest nodes
  std::uint64_t peers_dropped = 0;
  std::uint64_t duplicate_pieces = 0;
  std::uint64_t bad_stored = 0;  // pieces stored that differ from the bundle: must be 0
  std::uint64_t messages = 0;
  double end_s = 0;                // virtual time when the run stopped
  double origin_last_piece_s = 0;  // when the origin finished sending its last piece

  // Completion time at quantile q in [0, 1] of done_s (every expected node), +inf if some
  // node did not complete.
  [[nodiscard]] double quantile(double q) const;
};

swarm_sim_result run_swarm_sim(const swarm_sim_options& o);

}  // namespace meshdeploy::sim

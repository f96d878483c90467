// The swarm in the deterministic simulator (tests/sim/swarm_sim.h): the time until every host
// holds the verified bundle, against the physical limit T* = S/B + (ceil(log2(N+1)) - 1) * c/B,
// and what the origin uploaded. A plain main (each run is one simulated distribution):
//
//   bench_swarm_sim [--nodes N] [--seed S] [--runs R] [--bundle-bytes BYTES]
//                   [--piece-size BYTES] [--uplink BYTES_PER_S] [--loss P]
//                   [--leavers K] [--corrupt K] [--upload-slots U] [--requests-per-peer R]
//                   [--requests-in-flight F]
//
// Defaults: 16 nodes, a 4 MiB bundle in 16 KiB pieces over 390 kB/s uplinks (the same
// S/B and c/B as 64 MiB in 256 KiB pieces at 50 Mbit/s). Results: bench/RESULTS.md.
#include "tests/sim/swarm_sim.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  using namespace meshdeploy::sim;
  swarm_sim_options o;
  int runs = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--nodes") {
      o.nodes = std::strtoull(v, nullptr, 10);
    } else if (k == "--seed") {
      o.seed = std::strtoull(v, nullptr, 10);
    } else if (k == "--runs") {
      runs = std::atoi(v);
    } else if (k == "--bundle-bytes") {
      o.bundle_bytes = std::strtoull(v, nullptr, 10);
    } else if (k == "--piece-size") {
      o.piece_size = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (k == "--uplink") {
      o.uplink_bytes_per_s = std::strtod(v, nullptr);
    } else if (k == "--loss") {
      o.loss = std::strtod(v, nullptr);
    } else if (k == "--leavers") {
      o.leavers = std::strtoull(v, nullptr, 10);
    } else if (k == "--corrupt") {
      o.corrupt = std::strtoull(v, nullptr, 10);
    } else if (k == "--upload-slots") {
      o.config.upload_slots = std::strtoull(v, nullptr, 10);
    } else if (k == "--requests-in-flight") {
      o.config.requests_in_flight = std::strtoull(v, nullptr, 10);
    } else if (k == "--requests-per-peer") {
      o.config.requests_per_peer = std::strtoull(v, nullptr, 10);
    } else {
      std::fprintf(stderr, "unknown option %s (see the header of bench/swarm_sim_bench.cc)\n",
                   k.c_str());
      return 2;
    }
  }
  fmt::print("nodes {}  bundle {} B  piece {} B  uplink {} B/s  loss {}  leavers {}  corrupt {}\n",
             o.nodes, o.bundle_bytes, o.piece_size, o.uplink_bytes_per_s, o.loss, o.leavers,
             o.corrupt);
  const std::uint64_t first_seed = o.seed;
  for (int r = 0; r < runs; ++r) {
    o.seed = first_seed + static_cast<std::uint64_t>(r);
    const auto t0 = std::chrono::steady_clock::now();
    const auto res = run_swarm_sim(o);
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double s = static_cast<double>(o.bundle_bytes);
    fmt::print(
        "seed {}: {}/{} done, failed {}  S/B {:.2f} s  T* {:.2f} s  median {:.2f} s ({:.3f} T*)  "
        "p99 {:.2f} s ({:.3f} T*)  slowest {:.2f} s ({:.3f} T*)  origin upload {:.2f} S  "
        "total upload {:.2f} S  origin done {:.2f} s  duplicates {}  rejected {}  bad stored {}  "
        "messages {}  "
        "wall {:.1f} s\n",
        o.seed, res.done_s.size(), res.expected, res.failed, res.s_over_b, res.t_star,
        res.quantile(0.5), res.quantile(0.5) / res.t_star, res.quantile(0.99),
        res.quantile(0.99) / res.t_star, res.quantile(1.0), res.quantile(1.0) / res.t_star,
        static_cast<double>(res.origin_upload_bytes) / s,
        static_cast<double>(res.total_upload_bytes) / s, res.origin_last_piece_s,
        res.duplicate_pieces, res.pieces_rejected, res.bad_stored, res.messages, wall);
    if (!res.first_error.empty()) fmt::print("  first failure: {}\n", res.first_error);
  }
  return 0;
}

// Record replication in the deterministic simulator (tests/sim/records_sim.h): how long a new
// record takes to reach every node, and what anti-entropy costs in steady state. A plain main
// (each phase is one simulated run, not a micro-benchmark loop):
//
//   bench_records_sim [--nodes N] [--seed S] [--records K] [--loss P]
//                     [--steady-nodes M] [--steady-records R] [--steady-seconds T]
//                     [--fanout F]
//
// Reach: N nodes (each with its own RocksDB), a grant, then K records published one by one at
// random nodes under message loss P (default 10%), 200 ms apart; for each, the virtual time
// until every node has stored it (epidemic push with fanout 3, anti-entropy every second).
// Steady state: M nodes (default 20) holding the same R records (default 10,000, loaded into
// each store directly), T simulated seconds (default 60) with no change, then T seconds with one
// new record per second: replicator bytes sent per node per second (payload; streams add their
// own framing and sealing). Then one node is restarted with a wiped data dir: time and bytes to
// catch up. Results and their commands: bench/RESULTS.md.
#include "tests/sim/records_sim.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace meshdeploy::sim {
namespace {

using namespace std::chrono_literals;
using wall = std::chrono::steady_clock;
using records::record_type;

struct args {
  std::size_t nodes = 7;
  std::uint64_t seed = 1;
  std::size_t records = 20;
  double loss = 0.10;
  std::size_t steady_nodes = 20;
  std::size_t steady_records = 10'000;
  long steady_seconds = 60;
  std::size_t fanout = 3;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "bench_records_sim: %s\nusage: bench_records_sim [--nodes N] [--seed S] "
               "[--records K] [--loss P] [--steady-nodes M] [--steady-records R] "
               "[--steady-seconds T] [--fanout F]\n",
               why);
  std::exit(2);
}

args parse(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + k).c_str());
    const std::string v = argv[++i];
    try {
      if (k == "--nodes") {
        a.nodes = std::stoul(v);
      } else if (k == "--seed") {
        a.seed = std::stoull(v);
      } else if (k == "--records") {
        a.records = std::stoul(v);
      } else if (k == "--loss") {
        a.loss = std::stod(v);
      } else if (k == "--steady-nodes") {
        a.steady_nodes = std::stoul(v);
      } else if (k == "--steady-records") {
        a.steady_records = std::stoul(v);
      } else if (k == "--fanout") {
        a.fanout = std::stoul(v);
      } else if (k == "--steady-seconds") {
        a.steady_seconds = std::stol(v);
      } else {
        usage(("unknown option " + k).c_str());
      }
    } catch (const std::exception&) {
      usage(("bad value for " + k).c_str());
    }
  }
  if (a.nodes < 2 || a.steady_nodes < 2) usage("need at least 2 nodes");
  return a;
}

double seconds(records::duration d) { return std::chrono::duration<double>(d).count(); }
double seconds_since(wall::time_point t) {
  return std::chrono::duration<double>(wall::now() - t).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

std::uint64_t bytes_out(records_sim& sim) {
  std::uint64_t b = 0;
  for (std::size_t i = 0; i < sim.size(); ++i) {
    if (sim.alive(i)) b += sim.replicator(i).stats().bytes_out;
  }
  return b;
}

void reach(const args& a) {
  const auto w0 = wall::now();
  records::replicator_config cfg;
  cfg.fanout = a.fanout;
  records_sim sim({.seed = a.seed, .nodes = a.nodes, .loss = a.loss, .cfg = cfg});
  fmt::print("reach: N={} loss={:.0f}% fanout={} (open {} RocksDB stores: {:.1f} s wall)\n",
             a.nodes, a.loss * 100, a.fanout, a.nodes, seconds_since(w0));
  const auto w1 = wall::now();
  std::vector<double> latencies;
  std::size_t incomplete = 0;
  auto spread = [&](const records::record& r, std::size_t at) {
    const auto t0 = sim.now();
    auto res = sim.publish(at, r);
    if (!res || !res.value()) {
      fmt::print("  publish failed: {}\n", res ? "stale" : res.error().message);
      std::exit(1);
    }
    const auto id = records::sync_id(r);
    const bool all =
        sim.run_until([&] { return sim.stored_count(id) >= a.nodes; }, std::chrono::seconds(60));
    if (!all) {
      ++incomplete;
      return;
    }
    latencies.push_back(seconds(*sim.last_stored_at(id) - t0));
  };
  spread(sim.grant(2), 0);
  std::mt19937_64 rng(a.seed);
  for (std::size_t k = 0; k < a.records; ++k) {
    sim.run_for(200ms);
    spread(sim.make(record_type::progress, fmt::format("d/{}", k), 1, 2, 300), rng() % a.nodes);
  }
  fmt::print(
      "  time to reach 100% of nodes over {} records: p50 {:.3f} s, p99 {:.3f} s, max {:.3f} s; "
      "{} never reached everyone within 60 s\n",
      latencies.size(), percentile(latencies, 0.5), percentile(latencies, 0.99),
      percentile(latencies, 1.0), incomplete);
  const auto& c = sim.counters();
  fmt::print("  messages sent {} (lost {}), bytes {}; wall {:.1f} s for {:.1f} simulated s\n",
             c.messages_sent, c.messages_lost, c.bytes_sent, seconds_since(w1),
             seconds(sim.now() - (records::time_point{} + std::chrono::hours(1))));
}

void steady(const args& a) {
  const auto w0 = wall::now();
  records_sim sim({.seed = a.seed, .nodes = a.steady_nodes});
  std::vector<records::record> load;
  load.push_back(sim.grant(2));
  const record_type types[] = {record_type::application, record_type::group, record_type::intent,
                               record_type::progress, record_type::revision};
  for (std::size_t k = 1; k < a.steady_records; ++k) {
    load.push_back(sim.make(types[k % 5], fmt::format("k{}", k), 1, 2, 200));
  }
  for (std::size_t i = 0; i < sim.size(); ++i) {
    for (const auto& r : load) {
      if (!sim.store(i).put(r)) std::exit(1);
    }
  }
  fmt::print("steady: N={} with {} records each (load {:.1f} s wall)\n", a.steady_nodes,
             a.steady_records, seconds_since(w0));
  sim.run_for(5s);
  if (!sim.converged()) {
    fmt::print("  not converged after loading: {}\n", sim.describe_divergence());
    std::exit(1);
  }
  const auto T = std::chrono::seconds(a.steady_seconds);
  const double per = static_cast<double>(a.steady_nodes) * static_cast<double>(a.steady_seconds);
  auto b0 = bytes_out(sim);
  const auto w1 = wall::now();
  sim.run_for(T);
  const auto quiet = static_cast<double>(bytes_out(sim) - b0) / per;
  fmt::print("  quiet: {:.1f} B/s per node (payload), wall {:.2f} s for {} simulated s\n", quiet,
             seconds_since(w1), a.steady_seconds);

  b0 = bytes_out(sim);
  std::mt19937_64 rng(a.seed);
  for (long s = 0; s < a.steady_seconds; ++s) {
    (void)sim.publish(rng() % sim.size(),
                      sim.make(record_type::progress, fmt::format("churn/{}", s), 1, 2, 300));
    sim.run_for(1s);
  }
  const auto churn = static_cast<double>(bytes_out(sim) - b0) / per;
  fmt::print("  one new record per second: {:.1f} B/s per node (payload)\n", churn);

  // A node restarted with a wiped data dir.
  sim.run_for(3s);
  const std::size_t victim = 1;
  sim.restart(victim, /*wipe=*/true);
  const auto t0 = sim.now();
  const auto b1 = bytes_out(sim);
  const auto w2 = wall::now();
  const bool ok = sim.run_until([&] { return sim.converged(); }, 60s);
  fmt::print(
      "  wiped node catch-up: {} in {:.2f} simulated s, {:.1f} MB sent cluster-wide, wall {:.2f} "
      "s\n",
      ok ? "converged" : "NOT converged", seconds(sim.now() - t0),
      static_cast<double>(bytes_out(sim) - b1) / 1e6, seconds_since(w2));
}

}  // namespace
}  // namespace meshdeploy::sim

int main(int argc, char** argv) {
  const auto a = meshdeploy::sim::parse(argc, argv);
  meshdeploy::sim::reach(a);
  if (a.steady_records > 0) meshdeploy::sim::steady(a);
  return 0;
}

// Gossip membership at scale in the deterministic simulator (tests/sim/simulator.h): crash
// detection, user-broadcast dissemination, steady-state traffic and simulator speed for one N.
// A plain main (each phase is one long simulated run, not a micro-benchmark loop):
//
//   bench_gossip_sim [--nodes N] [--seed S] [--profile lan|local] [--crashes K]
//                    [--broadcasts B] [--loss P] [--latency-us U] [--jitter-us J]
//                    [--freeze-minutes M] [--loss-minutes M] [--steady-minutes M]
//                    [--join-seconds T] [--snapshot-join 0|1] [--restart-crashed 0|1]
//                    [--probe-interval-ms X]
//                    [--probe-timeout-ms X]
//                    [--suspicion-mult X] [--suspicion-max-mult X] [--retransmit-mult X]
//                    [--gossip-interval-ms X] [--gossip-nodes X] [--trace-suspicions 0|1]
//
// The parameter options override the profile's value (tuning experiments; docs/gossip.md).
// Phases: N nodes join (one every T / N, default T = 10 s, at least 1 ms apart) and run until
// every view agrees (with --snapshot-join 1 each node instead starts from one push_pull holding
// the whole cluster, delivered within T: simulator::start_cluster_from_snapshot); M quiet simulated
// minutes (default 1) measure bytes per node per second and wall time; B user broadcasts from
// random nodes under loss P (default 5%) measure time to reach 100% of live nodes; K crashes of
// random nodes, 30 s apart, without loss, measure the time until every live member sees each one
// dead (with --restart-crashed 1 each crashed node restarts at a new port 30 s after its crash,
// joins a random live node and the cluster runs 30 s more, so every crash happens at full size,
// as in bench/gossip_real.sh; each crash prints a line with its times and when the first
// suspicion was raised anywhere, in 50 ms steps); then M simulated minutes in which 5% of the
// members freeze for 1-10 s once a minute (Lifeguard's experiment) count healthy nodes declared
// dead; then M simulated minutes under 10% uniform packet loss count every dead declaration. Peak
// RSS is printed at the end. With --trace-suspicions 1 every healthy node declared dead is
// printed as soon as the minute it happened in ends, with the suspicion steps about it
// (sim_options::trace_suspicions): who accused it first, its refutations, the observer's
// suspicion and confirmations, and how far the refutation got. The run is deterministic by seed,
// so a shorter --loss-minutes replays a longer run's first minutes exactly (the trace does not
// change the run). Results and their commands: bench/RESULTS.md.
#include "tests/sim/simulator.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace meshdeploy::sim {
namespace {

using namespace std::chrono_literals;
using wall = std::chrono::steady_clock;

struct args {
  std::size_t nodes = 100;
  std::uint64_t seed = 1;
  std::string profile = "lan";
  std::size_t crashes = 10;
  std::size_t broadcasts = 10;
  double loss = 0.05;
  long latency_us = 200;
  long jitter_us = 800;
  std::size_t freeze_minutes = 0;
  std::size_t loss_minutes = 0;
  std::size_t steady_minutes = 1;
  long join_seconds = 10;
  bool snapshot_join = false;
  bool restart_crashed = false;
  // Profile overrides; negative = keep the profile's value.
  long probe_interval_ms = -1;
  long probe_timeout_ms = -1;
  long suspicion_mult = -1;
  long suspicion_max_mult = -1;
  long retransmit_mult = -1;
  long gossip_interval_ms = -1;
  long gossip_nodes = -1;
  bool trace_suspicions = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "bench_gossip_sim: %s\nusage: bench_gossip_sim [--nodes N] [--seed S] [--profile "
               "lan|local] [--crashes K] [--broadcasts B] [--loss P] [--latency-us U] "
               "[--jitter-us J] [--freeze-minutes M] [--loss-minutes M] [--steady-minutes M] "
               "[--join-seconds T] [--snapshot-join 0|1] [--restart-crashed 0|1] "
               "[--probe-interval-ms X] "
               "[--probe-timeout-ms X] "
               "[--suspicion-mult X] [--suspicion-max-mult X] [--retransmit-mult X] "
               "[--gossip-interval-ms X] [--gossip-nodes X] [--trace-suspicions 0|1]\n",
               why);
  std::exit(2);
}

args parse(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + k).c_str());
    const std::string v = argv[++i];
    if (k == "--nodes") {
      a.nodes = std::stoul(v);
    } else if (k == "--seed") {
      a.seed = std::stoull(v);
    } else if (k == "--profile") {
      a.profile = v;
    } else if (k == "--crashes") {
      a.crashes = std::stoul(v);
    } else if (k == "--broadcasts") {
      a.broadcasts = std::stoul(v);
    } else if (k == "--loss") {
      a.loss = std::stod(v);
    } else if (k == "--latency-us") {
      a.latency_us = std::stol(v);
    } else if (k == "--jitter-us") {
      a.jitter_us = std::stol(v);
    } else if (k == "--freeze-minutes") {
      a.freeze_minutes = std::stoul(v);
    } else if (k == "--loss-minutes") {
      a.loss_minutes = std::stoul(v);
    } else if (k == "--steady-minutes") {
      a.steady_minutes = std::stoul(v);
    } else if (k == "--snapshot-join") {
      a.snapshot_join = v == "1" || v == "yes";
    } else if (k == "--restart-crashed") {
      a.restart_crashed = v == "1" || v == "yes";
    } else if (k == "--join-seconds") {
      a.join_seconds = std::stol(v);
    } else if (k == "--probe-interval-ms") {
      a.probe_interval_ms = std::stol(v);
    } else if (k == "--probe-timeout-ms") {
      a.probe_timeout_ms = std::stol(v);
    } else if (k == "--suspicion-mult") {
      a.suspicion_mult = std::stol(v);
    } else if (k == "--suspicion-max-mult") {
      a.suspicion_max_mult = std::stol(v);
    } else if (k == "--retransmit-mult") {
      a.retransmit_mult = std::stol(v);
    } else if (k == "--gossip-interval-ms") {
      a.gossip_interval_ms = std::stol(v);
    } else if (k == "--gossip-nodes") {
      a.gossip_nodes = std::stol(v);
    } else if (k == "--trace-suspicions") {
      a.trace_suspicions = v == "1" || v == "yes";
    } else {
      usage(("unknown option " + k).c_str());
    }
  }
  if (a.nodes < 3) usage("--nodes must be at least 3");
  if (a.profile != "lan" && a.profile != "local") usage("--profile must be lan or local");
  if (a.join_seconds < 1) usage("--join-seconds must be at least 1");
  if (a.suspicion_mult == 0 || a.suspicion_max_mult == 0 || a.retransmit_mult == 0 ||
      a.gossip_nodes == 0 || a.probe_interval_ms == 0 || a.probe_timeout_ms == 0 ||
      a.gossip_interval_ms == 0) {
    usage("parameter overrides must be positive");
  }
  return a;
}

// Peak resident set size of this process in MB (VmHWM from /proc/self/status), 0 if unknown.
double peak_rss_mb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  double kb = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "VmHWM:", 6) == 0) kb = std::strtod(line + 6, nullptr);
  }
  std::fclose(f);
  return kb / 1024;
}

// CPU seconds this process has used: on a shared machine the fair measure of "one core".
double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

double seconds_since(wall::time_point t) {
  return std::chrono::duration<double>(wall::now() - t).count();
}

std::string dist(const std::vector<duration>& v) {
  if (v.empty()) return "n/a";
  return fmt::format("p50 {:.2f} s, p90 {:.2f} s, p99 {:.2f} s, max {:.2f} s (n={})",
                     to_ms(percentile(v, 0.5)) / 1000, to_ms(percentile(v, 0.9)) / 1000,
                     to_ms(percentile(v, 0.99)) / 1000, to_ms(percentile(v, 1.0)) / 1000, v.size());
}

std::string_view kind_name(gossip::trace_event::kind k) {
  using K = gossip::trace_event::kind;
  switch (k) {
    case K::suspected:
      return "suspected";
    case K::confirmed:
      return "confirmed";
    case K::cleared:
      return "cleared";
    case K::stale_alive:
      return "stale-alive";
    case K::declared_dead:
      return "declared-dead";
    case K::dead_received:
      return "dead-received";
    case K::refuted:
      return "refuted";
    case K::self_suspect_ignored:
      return "self-suspect-ignored";
    case K::heard_alive:
      return "heard-alive";
  }
  return "?";
}

std::string_view via_name(gossip::trace_event::source v) {
  using V = gossip::trace_event::source;
  switch (v) {
    case V::probe:
      return "probe";
    case V::message:
      return "message";
    case V::push_pull:
      return "push-pull";
    case V::none:
      return "-";
  }
  return "?";
}

// What one node received in [from, to]: packets, streams and alive messages, and when it heard
// about `subject`.
void print_inbound(const simulator& s, const std::vector<inbound_step>& ring, duration from,
                   duration to, std::size_t subject) {
  auto sec = [](duration d) { return to_ms(d) / 1000; };
  if (ring.empty()) return;
  std::size_t packets = 0, streams = 0, alives = 0;
  std::vector<std::string> about;
  // Silence is measured only where the ring reaches back.
  duration last = std::max(from, ring.front().at), gap{};
  for (const auto& in : ring) {
    if (in.at < from || in.at > to) continue;
    switch (in.k) {
      case inbound_step::kind::packet:
        packets++;
        gap = std::max(gap, in.at - last);
        last = in.at;
        break;
      case inbound_step::kind::stream:
        streams++;
        break;
      case inbound_step::kind::heard_alive:
        alives++;
        if (in.subject == subject) {
          about.push_back(fmt::format("{:.3f} s inc {}", sec(in.at), in.value));
        }
        break;
    }
  }
  gap = std::max(gap, to - last);
  std::string heard;
  for (const auto& a : about) heard += " " + a;
  fmt::print(
      "    observer's input {:.3f}-{:.3f} s: {} packets (longest silence {:.3f} s), {} streams, "
      "{} alive messages, about {}:{}{}\n",
      sec(from), sec(to), packets, sec(gap), streams, alives, s.name(subject),
      heard.empty() ? " none" : heard,
      ring.front().at > from ? fmt::format(" (ring starts at {:.3f} s)", sec(ring.front().at))
                             : std::string());
}

// One false death with its suspicion trace, for finding out why it happened.
void print_false_death(const simulator& s, const false_death& f) {
  using K = gossip::trace_event::kind;
  auto sec = [](duration d) { return to_ms(d) / 1000; };
  auto who = [&s](std::uint32_t i) {
    return i == trace_step::nobody ? std::string("?") : s.name(i);
  };
  fmt::print("  false death: {} declared {} dead at {:.3f} s{}; {} trace steps\n",
             s.name(f.observer), s.name(f.subject), sec(f.at),
             f.subject_frozen ? " (subject stalled recently)" : "", f.trace.size());
  if (f.trace.empty()) return;
  const auto& t = f.trace;
  // Accusations from failed probes (independent), and the subject's own steps.
  for (const auto& st : t) {
    if (st.k == K::suspected && st.via == gossip::trace_event::source::probe) {
      fmt::print("    {:.3f} s accused by {} (own probe failed) at inc {}\n", sec(st.at),
                 who(st.observer), st.inc);
    }
    if (st.k == K::confirmed && st.via == gossip::trace_event::source::probe) {
      fmt::print("    {:.3f} s independently confirmed by {} (own probe failed) at inc {}\n",
                 sec(st.at), who(st.observer), st.inc);
    }
  }
  std::size_t ignored = 0;
  for (const auto& st : t) {
    if (st.observer != f.subject) continue;
    if (st.k == K::refuted) {
      fmt::print("    {:.3f} s subject refuted: now inc {}, its queue {} messages\n", sec(st.at),
                 st.inc, st.queue_depth);
    } else if (st.k == K::self_suspect_ignored) {
      ignored++;
    }
  }
  fmt::print("    subject ignored {} suspicions of an incarnation it had already refuted\n",
             ignored);
  // The observer's own view of the episode.
  for (const auto& st : t) {
    if (st.observer != f.observer) continue;
    fmt::print("    observer {:.3f} s {} via {} from {} inc {} confirmations {} deadline {}\n",
               sec(st.at), kind_name(st.k), via_name(st.via), who(st.from), st.inc,
               st.confirmations,
               st.deadline.count() ? fmt::format("{:.3f} s", sec(st.deadline)) : "-");
  }
  // Everyone else: how far suspicion and refutation got, and how confirmations arrived.
  std::map<std::string, std::size_t> counts;
  std::vector<duration> cleared_at;
  std::size_t suspected = 0;
  for (const auto& st : t) {
    counts[fmt::format("{}/{}", kind_name(st.k), via_name(st.via))]++;
    if (st.k == K::suspected) suspected++;
    if (st.k == K::cleared) cleared_at.push_back(st.at);
  }
  std::string summary;
  for (const auto& [k, n] : counts) summary += fmt::format(" {}={}", k, n);
  fmt::print("    all nodes:{}\n", summary);
  if (!cleared_at.empty()) {
    fmt::print(
        "    {} of {} suspicions cleared; clear times p50 {:.3f} s, p99 {:.3f} s, last {:.3f} s\n",
        cleared_at.size(), suspected, sec(percentile(cleared_at, 0.5)),
        sec(percentile(cleared_at, 0.99)), sec(percentile(cleared_at, 1.0)));
  }
  duration refuted{};
  for (const auto& st : t) {
    if (st.observer == f.subject && st.k == K::refuted) refuted = st.at;
  }
  if (refuted.count() > 0) print_inbound(s, f.inbound, refuted, f.at, f.subject);
}

int run(const args& a) {
  sim_options o;
  o.trace_suspicions = a.trace_suspicions;
  o.seed = a.seed;
  o.cfg = a.profile == "lan" ? gossip::config::lan() : gossip::config::local();
  auto ms = [](long v) { return std::chrono::milliseconds(v); };
  if (a.probe_interval_ms > 0) o.cfg.probe_interval = ms(a.probe_interval_ms);
  if (a.probe_timeout_ms > 0) o.cfg.probe_timeout = ms(a.probe_timeout_ms);
  if (a.suspicion_mult > 0) o.cfg.suspicion_mult = static_cast<unsigned>(a.suspicion_mult);
  if (a.suspicion_max_mult > 0) {
    o.cfg.suspicion_max_mult = static_cast<unsigned>(a.suspicion_max_mult);
  }
  if (a.retransmit_mult > 0) o.cfg.retransmit_mult = static_cast<unsigned>(a.retransmit_mult);
  if (a.gossip_interval_ms > 0) o.cfg.gossip_interval = ms(a.gossip_interval_ms);
  if (a.gossip_nodes > 0) o.cfg.gossip_nodes = static_cast<std::size_t>(a.gossip_nodes);
  o.net.latency_base = std::chrono::microseconds(a.latency_us);
  o.net.latency_jitter = std::chrono::microseconds(a.jitter_us);
  simulator s(o);
  fmt::print("bench_gossip_sim: N={} seed={} profile={} latency {}+U(0,{}) us\n", a.nodes, a.seed,
             a.profile, a.latency_us, a.jitter_us);
  fmt::print(
      "parameters: probe {} ms / timeout {} ms, suspicion_mult {} (max x{}), retransmit_mult {}, "
      "gossip {} ms to {}\n",
      to_ms(o.cfg.probe_interval), to_ms(o.cfg.probe_timeout), o.cfg.suspicion_mult,
      o.cfg.suspicion_max_mult, o.cfg.retransmit_mult, to_ms(o.cfg.gossip_interval),
      o.cfg.gossip_nodes);

  // Join and converge.
  auto t0 = wall::now();
  const duration spacing = std::max<duration>(
      1ms, duration(std::chrono::seconds(a.join_seconds)) / static_cast<long>(a.nodes));
  if (a.snapshot_join) {
    s.start_cluster_from_snapshot(a.nodes, std::chrono::seconds(a.join_seconds));
  } else {
    s.start_cluster(a.nodes, spacing);
  }
  const auto joined = s.elapsed();
  const duration step = a.nodes > 2000 ? 10s : 2s;
  const auto conv = s.run_until_converged(600s, step);
  fmt::print(
      "join: last join sent at {:.1f} s; converged {} ({:.1f} s wall, {:.1f} s CPU, peak RSS "
      "{:.0f} MB)\n",
      to_ms(joined) / 1000,
      conv ? fmt::format("{:.1f} s after it", to_ms(*conv) / 1000) : "NOT within 600 s",
      seconds_since(t0), cpu_seconds(), peak_rss_mb());
  if (!conv) {
    for (const auto& e : s.convergence_errors(5)) fmt::print("  {}\n", e);
    return 1;
  }

  // Steady state: quiet simulated minutes.
  s.run_for(30s);  // let join-time gossip and push/pulls drain
  const counters before = s.stats();
  t0 = wall::now();
  const double cpu0 = cpu_seconds();
  const auto steady = std::max<std::size_t>(1, a.steady_minutes);
  s.run_for(std::chrono::minutes(steady));
  const double wall_minute = seconds_since(t0) / static_cast<double>(steady);
  const double cpu_minute = (cpu_seconds() - cpu0) / static_cast<double>(steady);
  const counters after = s.stats();
  const double per_node_s = static_cast<double>(a.nodes) * 60.0 * static_cast<double>(steady);
  fmt::print(
      "steady state: {:.0f} B/s per node on the wire (modelled headers + sealing), {:.0f} B/s "
      "payload, {:.1f} packets/s per node; per simulated minute {:.2f} s wall, {:.2f} s CPU ({} "
      "events, {} simulated minutes)\n",
      static_cast<double>(after.wire_bytes_sent - before.wire_bytes_sent) / per_node_s,
      static_cast<double>(after.payload_bytes_sent - before.payload_bytes_sent) / per_node_s,
      static_cast<double>(after.packets_sent - before.packets_sent) / per_node_s, wall_minute,
      cpu_minute, after.events - before.events, steady);

  // Dissemination under loss.
  s.net().loss = a.loss;
  std::vector<std::uint64_t> ids;
  for (std::size_t k = 0; k < a.broadcasts; ++k) {
    ids.push_back(s.broadcast(s.random_below(a.nodes)));
    s.run_for(10s);
  }
  std::vector<duration> all, per_node;
  std::size_t incomplete = 0;
  for (auto id : ids) {
    const auto r = s.reach_of(id);
    if (r.all) {
      all.push_back(*r.all);
    } else {
      incomplete++;
      fmt::print("  broadcast {} reached {}/{}\n", id, r.reached, r.expected);
    }
    per_node.insert(per_node.end(), r.per_node.begin(), r.per_node.end());
  }
  fmt::print("broadcast at {:.0f}% loss: time to 100% of nodes {}; {} of {} incomplete\n",
             a.loss * 100, dist(all), incomplete, ids.size());
  fmt::print("  per node: {}\n", dist(per_node));
  s.net().loss = 0;
  s.run_for(10s);

  // Crash detection.
  t0 = wall::now();
  const double cpu_crash0 = cpu_seconds();
  const auto sim_start = s.elapsed();
  std::vector<duration> everyone, observers;
  std::size_t undetected = 0;
  for (std::size_t k = 0; k < a.crashes; ++k) {
    std::size_t v = 0;
    for (int tries = 0; tries < 1000; ++tries) {
      v = s.random_below(a.nodes);
      if (s.up(v)) break;
    }
    s.crash(v);
    // 30 s in 50 ms steps (the same run: stepping only pauses it) to time the first accusation.
    auto raised = [&s] {
      std::uint64_t r = 0;
      for (std::size_t i = 0; i < s.size(); ++i) {
        if (s.up(i)) r += s.node(i).stats().suspicions_raised;
      }
      return r;
    };
    const std::uint64_t raised0 = raised();
    std::optional<duration> first_suspicion;
    for (int step = 0; step < 600; ++step) {
      s.run_for(50ms);
      if (!first_suspicion && raised() > raised0) first_suspicion = 50ms * (step + 1);
    }
    const auto d = s.detection_of(v);
    if (d.everyone) {
      everyone.push_back(*d.everyone);
    } else {
      undetected++;
    }
    observers.insert(observers.end(), d.per_observer.begin(), d.per_observer.end());
    fmt::print("  crash {}: {} seen dead by all {}: {}; first suspicion raised within {}\n", k + 1,
               s.name(v),
               d.everyone ? fmt::format("in {:.3f} s", to_ms(*d.everyone) / 1000)
                          : fmt::format("NOT within 30 s ({} missing)", d.missing),
               dist(d.per_observer),
               first_suspicion ? fmt::format("{:.2f} s", to_ms(*first_suspicion) / 1000)
                               : std::string("-"));
    if (a.restart_crashed) {
      std::size_t seed = v;
      for (int tries = 0; tries < 1000 && !s.up(seed); ++tries) seed = s.random_below(a.nodes);
      if (s.up(seed)) {
        s.restart(v, seed);
        s.run_for(30s);
      }
    }
  }
  fmt::print("crash seen dead by every live member: {}; {} not everywhere within 30 s\n",
             dist(everyone), undetected);
  fmt::print("  per observer: {}\n", dist(observers));
  const double crash_minutes = to_ms(s.elapsed() - sim_start) / 60000;
  fmt::print("  per simulated minute during crashes: {:.2f} s wall, {:.2f} s CPU\n",
             seconds_since(t0) / crash_minutes, (cpu_seconds() - cpu_crash0) / crash_minutes);

  // Freezes: 5% of the members stall for 1-10 s at a random moment of every minute.
  t0 = wall::now();
  std::size_t frozen_deaths_before = s.false_deaths().size();
  for (std::size_t minute = 0; minute < a.freeze_minutes; ++minute) {
    for (std::size_t k = 0; k < std::max<std::size_t>(1, a.nodes / 20); ++k) {
      const std::size_t n = s.random_below(a.nodes);
      const auto stall = std::chrono::milliseconds(1000 + s.random_below(9000));
      s.at(std::chrono::milliseconds(s.random_below(50'000)),
           [&s, n, stall] { s.freeze(n, stall); });
    }
    s.run_for(1min);
  }
  if (a.freeze_minutes > 0) {
    std::size_t healthy = 0, stalled = 0;
    for (std::size_t i = frozen_deaths_before; i < s.false_deaths().size(); ++i) {
      (s.false_deaths()[i].subject_frozen ? stalled : healthy)++;
    }
    fmt::print(
        "freezes ({} min, {} nodes/min for 1-10 s): {} healthy nodes declared dead, {} "
        "declarations about stalled nodes ({:.1f} s wall)\n",
        a.freeze_minutes, std::max<std::size_t>(1, a.nodes / 20), healthy, stalled,
        seconds_since(t0));
  }

  // Uniform loss: 10% of all packets (streams feel it as retransmission delays, see
  // docs/simulator.md); every dead declaration counts, since nobody crashes or stalls.
  if (a.loss_minutes > 0) {
    t0 = wall::now();
    std::uint64_t dead_before = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s.up(i)) dead_before += s.node(i).stats().members_declared_dead;
    }
    const auto false_before = s.false_deaths().size();
    s.net().loss = 0.10;
    std::size_t printed = s.false_deaths().size();
    std::size_t late_printed = s.late_clears().size();
    for (std::size_t minute = 1; minute <= a.loss_minutes; ++minute) {
      s.run_for(std::chrono::minutes(1));
      if (a.trace_suspicions) {
        for (; printed < s.false_deaths().size(); ++printed) {
          fmt::print("  in 10% loss minute {}:\n", minute);
          print_false_death(s, s.false_deaths()[printed]);
        }
        for (; late_printed < s.late_clears().size(); ++late_printed) {
          const auto& l = s.late_clears()[late_printed];
          fmt::print(
              "  late clear: {} cleared its suspicion of {} at {:.3f} s, {:.3f} s after the "
              "refutation\n",
              s.name(l.observer), s.name(l.subject), to_ms(l.at) / 1000, to_ms(l.lag) / 1000);
          print_inbound(s, l.inbound, l.at - l.lag, l.at, l.subject);
        }
      }
      if (minute % 5 != 0 || minute == a.loss_minutes) continue;
      std::uint64_t dead = 0;
      for (std::size_t i = 0; i < s.size(); ++i) {
        if (s.up(i)) dead += s.node(i).stats().members_declared_dead;
      }
      fmt::print(
          "  10% loss, {} min so far: {} dead declarations ({:.1f} s wall){}\n", minute,
          dead - dead_before, seconds_since(t0),
          a.trace_suspicions
              ? fmt::format("; {} suspicions cleared more than {:.0f} s after the refutation",
                            s.late_clear_count(), to_ms(simulator::late_clear_after) / 1000)
              : std::string());
    }
    s.net().loss = 0;
    std::uint64_t dead_after = 0, raised = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (!s.up(i)) continue;
      dead_after += s.node(i).stats().members_declared_dead;
      raised += s.node(i).stats().suspicions_raised;
    }
    fmt::print(
        "10% loss ({} min): {} dead declarations, {} healthy nodes declared dead, {} suspicions "
        "raised in the whole run, {} packets lost ({:.1f} s wall)\n",
        a.loss_minutes, dead_after - dead_before, s.false_deaths().size() - false_before, raised,
        s.stats().packets_lost, seconds_since(t0));
    if (a.trace_suspicions) {
      fmt::print("  suspicions cleared more than {:.0f} s after the refutation: {}\n",
                 to_ms(simulator::late_clear_after) / 1000, s.late_clear_count());
    }
  }

  std::size_t false_healthy = 0;
  for (const auto& f : s.false_deaths()) false_healthy += !f.subject_frozen;
  fmt::print("healthy nodes declared dead (whole run): {}; invariant violations: {}\n",
             false_healthy, s.violations().size());
  for (const auto& v : s.violations()) {
    fmt::print("  seed {} at {:.3f} s: {}\n", v.seed, to_ms(v.at) / 1000, v.what);
  }
  fmt::print(
      "totals: {} events, {} packets lost, {} over MTU, trace hash {:016x}; peak RSS {:.0f} MB\n",
      s.stats().events, s.stats().packets_lost, s.stats().packets_over_mtu, s.trace_hash(),
      peak_rss_mb());
  return s.violations().empty() ? 0 : 1;
}

}  // namespace
}  // namespace meshdeploy::sim

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress of long runs shows up as it happens
  return meshdeploy::sim::run(meshdeploy::sim::parse(argc, argv));
}

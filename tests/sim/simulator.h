// A deterministic discrete-event simulator for the sans-IO gossip core: it runs any number of
// gossip::membership instances in one process on virtual time. One event queue ordered by
// (time, sequence number) holds packet and stream deliveries, node ticks, thaws and scripted
// actions; every random choice (latency, loss, duplication, node seeds, join targets) comes from
// one std::mt19937_64 seeded by sim_options::seed, so a run replays exactly by seed and
// trace_hash() proves it. A node is ticked only when its next_deadline() is due, so idle nodes
// cost nothing and N=10,000 stays fast (memory is the limit: every node holds a full view).
//
// Network model: per-packet latency base + jitter (uniform or lognormal; reordering falls out of
// jitter), packet loss, duplication, one-way and two-way partitions between sets of nodes, an MTU
// cap (larger packets dropped and counted), per-node processing stalls (a frozen node queues its
// input and runs nothing until it thaws, like SIGSTOP), crash (node removed, traffic to it
// dropped) and restart (a new process under the same name at a new address, joining a seed).
// Streams are never duplicated; under loss they are delayed by modelled TCP retransmissions (and
// fail after too many), and they are cut by partitions and crashes. No cipher
// runs; its bytes are modelled in wire_bytes (network_model::*_wire_overhead).
//
// Invariants, checked on every membership event and at checkpoints (all views): incarnations per
// member never decrease in any node's view; a member seen dead or left at incarnation i is never
// seen alive or suspect again at incarnation <= i (same address; a restart at a new address is a
// legal rejoin); converged() checks that live nodes agree after faults heal. Violations are
// collected with the seed and the virtual time. Docs: docs/simulator.md.
#pragma once

#include "gossip/config.h"
#include "gossip/membership.h"
#include "gossip/meta_pool.h"
#include "gossip/transport.h"
#include "gossip/types.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace meshdeploy::sim {

using gossip::duration;
using gossip::time_point;

struct network_model {
  duration latency_base = std::chrono::microseconds(200);  // one-way, every packet and stream
  duration latency_jitter = std::chrono::microseconds(800);
  // 0: extra delay uniform in [0, latency_jitter]. > 0: latency_jitter * lognormal(0, sigma),
  // capped at 20 * latency_jitter (a long tail, as on real networks).
  double lognormal_sigma = 0.0;
  duration stream_extra = std::chrono::milliseconds(1);  // TCP connect before a stream arrives
  double loss = 0.0;       // every packet, in [0, 1]; streams: see stream_retransmits
  double duplicate = 0.0;  // packets only, in [0, 1]
  // Streams are TCP connections: with loss > 0 their SYN, SYN-ACK and first data segment are
  // each lost with probability `loss` and retransmitted after an RTO (1 s for the handshake,
  // 200 ms for data, as Linux does), doubling on repeated loss; a segment lost more than this
  // many times fails the stream (dropped, counted in streams_failed). Zero: streams ignore loss.
  int stream_retransmits = 5;
  std::size_t mtu = 1400;  // packets with more plaintext bytes are dropped and counted
  // Modelled bytes on the wire besides the plaintext: sealing (gossip/packet_crypto.h: key id,
  // version, 24-byte nonce, 16-byte tag = 42) plus IPv4+UDP headers (28) per packet; per stream
  // the sealing, a 4-byte frame length and about seven 52-byte TCP segments (handshake, data
  // ack, teardown).
  std::size_t packet_wire_overhead = 42 + 28;
  std::size_t stream_wire_overhead = 42 + 16 + 4 + 7 * 52;
};

struct sim_options {
  std::uint64_t seed = 1;
  gossip::config cfg = gossip::config::lan();
  network_model net;
  bool check_invariants = true;  // on every membership event
  // Also scan every node's full view this often (virtual time); zero disables. O(N^2) per scan.
  duration checkpoint_interval{};
  // Record every node's suspicion steps (gossip/trace.h) per subject, and attach the subject's
  // recent record to each false_death. Costs memory and time only while on.
  bool trace_suspicions = false;
};

struct counters {
  std::uint64_t events = 0;  // queue entries processed
  std::uint64_t ticks = 0;   // on_tick calls
  std::uint64_t packets_sent = 0;
  std::uint64_t packets_delivered = 0;
  std::uint64_t packets_lost = 0;        // by network_model::loss
  std::uint64_t packets_duplicated = 0;  // extra copies created
  std::uint64_t packets_over_mtu = 0;
  std::uint64_t streams_sent = 0;
  std::uint64_t streams_delivered = 0;
  std::uint64_t streams_delayed = 0;   // by at least one retransmission (network_model::loss)
  std::uint64_t streams_failed = 0;    // too many retransmissions
  std::uint64_t cut_by_partition = 0;  // packets and streams
  std::uint64_t to_down_node = 0;      // packets and streams to a crashed or unknown address
  std::uint64_t payload_bytes_sent = 0;
  std::uint64_t wire_bytes_sent = 0;  // payload plus modelled overhead
};

// A failed invariant: the seed and virtual time (since the simulation's epoch) to replay it.
struct violation {
  std::uint64_t seed = 0;
  duration at{};
  std::string what;
};

// One suspicion step of one node about one subject (sim_options::trace_suspicions).
struct trace_step {
  static constexpr std::uint32_t nobody = 0xffffffffu;
  duration at{};                // since the simulation's epoch
  duration deadline{};          // suspicion deadline since the epoch (zero when not applicable)
  std::uint32_t observer = 0;   // the node that took the step
  std::uint32_t from = nobody;  // accuser or confirmer, when known
  std::uint32_t inc = 0;        // the incarnation in the step
  std::uint32_t confirmations = 0;
  std::uint32_t queue_depth = 0;  // the observer's broadcast queue
  gossip::trace_event::kind k = gossip::trace_event::kind::suspected;
  gossip::trace_event::source via = gossip::trace_event::source::none;
};

// One input of one node (sim_options::trace_suspicions): a packet or stream delivered to it, or
// an alive message it decoded.
struct inbound_step {
  enum class kind : std::uint8_t { packet, stream, heard_alive };
  duration at{};
  std::uint32_t from = trace_step::nobody;     // packet, stream: the sending node
  std::uint32_t subject = trace_step::nobody;  // heard_alive
  std::uint32_t value = 0;                     // packet, stream: bytes; heard_alive: incarnation
  kind k = kind::packet;
};

// A node whose suspicion of a member was cleared late, long after the member refuted it
// (sim_options::trace_suspicions): a false death that did not happen, and the same question.
struct late_clear {
  duration at{};
  duration lag{};  // since the subject's refutation to that incarnation
  std::size_t observer = 0;
  std::size_t subject = 0;
  std::vector<inbound_step> inbound;  // the observer's last inputs, oldest first
};

// A healthy (not crashed) member declared dead by some node.
struct false_death {
  duration at{};
  std::size_t observer = 0;
  std::size_t subject = 0;
  bool subject_frozen = false;  // frozen when declared, or within the last suspicion window
  // With sim_options::trace_suspicions: every step about the subject (by any node, the subject's
  // own refutations included) since the last moment no node suspected it, oldest first.
  std::vector<trace_step> trace;
  std::vector<inbound_step> inbound;  // the observer's last inputs, oldest first
};

// How a crash was detected: per-observer latency for every live observer that saw it, and the
// time until the last of them did (empty while some live observer has not).
struct detection {
  std::vector<duration> per_observer;
  std::optional<duration> everyone;
  std::size_t missing = 0;  // live observers that have not seen it dead yet
};

// How far a user broadcast got.
struct reach {
  std::size_t reached = 0;   // live nodes other than the origin that received it
  std::size_t expected = 0;  // live nodes other than the origin
  std::vector<duration> per_node;
  std::optional<duration> all;  // when the last expected node received it
};

// p in [0, 1]; nearest-rank percentile of `v` (sorted copy). REQUIRES: !v.empty().
duration percentile(std::vector<duration> v, double p);
// Milliseconds as a double, for printing.
double to_ms(duration d);

// Threading: single-threaded; everything (memberships, handlers) runs inside run_until() or the
// fault calls on the caller's thread.
class simulator {
 public:
  explicit simulator(sim_options o);
  ~simulator();
  simulator(const simulator&) = delete;
  simulator& operator=(const simulator&) = delete;

  // Adds a node named "n<index>" at address 10.x.y.z:7946 (not joined). Returns its index.
  std::size_t add_node();
  // Node `i` joins through `seed` now and, like the driver, retries with backoff (1 s doubling to
  // 30 s) while it knows no other member. REQUIRES: up(i).
  void join(std::size_t i, std::size_t seed);
  // Adds n nodes; node 0 starts alone, node k >= 1 joins a random earlier node at
  // now + k * spacing. Runs until the last join has been sent.
  void start_cluster(std::size_t n, duration spacing);
  // Adds n nodes that start as if a join had already completed: within `spread`, each receives
  // (on the stream channel, from node 0's address) one push_pull holding all n members alive at
  // incarnation 0, and handles it like any other (so each also queues the news for gossip). A
  // shortcut for large N, where simulating the join itself costs O(N^2 log N) message deliveries;
  // runs until the last snapshot has been delivered.
  void start_cluster_from_snapshot(std::size_t n, duration spread);

  // Advances virtual time, processing every event due. Bounded by the queue: each event runs
  // once; a node's tick is only queued when its deadline moves.
  void run_until(time_point end);
  void run_for(duration d) { run_until(now_ + d); }
  // Runs in steps of `step` until converged() or `limit` passed; returns the time it took.
  std::optional<duration> run_until_converged(duration limit, duration step);
  // Schedules `action` at now + after (a fault in the middle of a run).
  void at(duration after, std::function<void()> action);

  [[nodiscard]] time_point now() const { return now_; }
  [[nodiscard]] duration elapsed() const { return now_ - epoch_; }

  // Faults.
  void crash(std::size_t i);
  // A new process under the same name at a new port (incarnation 0), joining `seed`.
  void restart(std::size_t i, std::size_t seed);
  // Node stops processing for d: input queues up and is handled, in order, at thaw.
  void freeze(std::size_t i, duration d);
  void leave(std::size_t i);
  // Drops traffic from every node in `a` to every node in `b`, and back unless one_way.
  void partition(const std::vector<std::size_t>& a, const std::vector<std::size_t>& b,
                 bool one_way = false);
  void heal() { cuts_.clear(); }
  network_model& net() { return opt_.net; }

  // Observation.
  [[nodiscard]] std::size_t size() const { return nodes_.size(); }
  [[nodiscard]] bool up(std::size_t i) const;
  [[nodiscard]] bool frozen(std::size_t i) const;
  // Up, not left.
  [[nodiscard]] bool live(std::size_t i) const;
  [[nodiscard]] std::vector<std::size_t> live_nodes() const;
  // REQUIRES: up(i).
  [[nodiscard]] gossip::membership& node(std::size_t i);
  [[nodiscard]] const std::string& name(std::size_t i) const;
  // Every live node sees every other live node alive at the incarnation that node holds.
  [[nodiscard]] bool converged() const;
  // Up to `max` human-readable reasons why converged() is false.
  [[nodiscard]] std::vector<std::string> convergence_errors(std::size_t max) const;

  // Measurements.
  [[nodiscard]] detection detection_of(std::size_t crashed) const;
  // Node `from` broadcasts a `bytes`-byte user payload now; returns its id.
  std::uint64_t broadcast(std::size_t from, std::size_t bytes = 16);
  [[nodiscard]] reach reach_of(std::uint64_t id) const;
  [[nodiscard]] const std::vector<false_death>& false_deaths() const { return false_deaths_; }
  // With sim_options::trace_suspicions: suspicions cleared more than late_clear_after after the
  // refutation (the first max_late_clears kept), and how many there were in all.
  [[nodiscard]] const std::vector<late_clear>& late_clears() const { return late_clears_; }
  [[nodiscard]] std::uint64_t late_clear_count() const { return late_clear_count_; }
  static constexpr duration late_clear_after = std::chrono::seconds(2);
  static constexpr std::size_t max_late_clears = 20;
  static constexpr std::size_t inbound_ring = 2048;
  [[nodiscard]] const counters& stats() const { return counters_; }
  [[nodiscard]] const std::vector<violation>& violations() const { return violations_; }
  // Runs the full-view invariant scan now (also done at checkpoints).
  void check_views();
  // FNV-1a over every processed event (time, kind, node, bytes): equal seeds give equal hashes.
  [[nodiscard]] std::uint64_t trace_hash() const { return trace_; }
  [[nodiscard]] std::uint64_t seed() const { return opt_.seed; }
  // Uniform in [0, n) from the simulator's engine (for tests choosing random faults).
  std::uint64_t random_below(std::uint64_t n);

 private:
  class node_transport;
  enum class kind : std::uint8_t { packet, stream, tick, thaw, action };
  struct event {
    time_point t;
    std::uint64_t seq = 0;
    kind k = kind::tick;
    std::size_t node = 0;
    std::uint64_t gen = 0;  // the target process generation (restarts, crashes bump it)
    gossip::address from;
    std::uint32_t from_node = 0;
    std::vector<std::byte> bytes;
    std::function<void()> action;
  };
  struct later {
    bool operator()(const event& a, const event& b) const {
      return a.t != b.t ? a.t > b.t : a.seq > b.seq;
    }
  };
  // What one observer has seen of one member, for the invariants: 12 bytes, since there are N^2
  // of them (a member's host is fixed by its index, so its port tells its processes apart;
  // incarnations in a simulation stay far below 2^32, and a larger one is reported).
  struct seen {
    std::uint32_t max_inc = 0;
    std::uint32_t gone_inc_plus1 = 0;  // 1 + highest incarnation seen dead or left; 0: never
    std::uint16_t port = 0;
    bool known = false;
  };
  struct slot {
    std::string name;
    gossip::address addr;
    std::uint64_t gen = 0;
    bool up = false;
    bool left = false;
    std::optional<time_point> frozen_until;
    std::optional<time_point> last_thaw;
    time_point started{};
    std::vector<event> pending;  // input held while frozen
    std::unique_ptr<node_transport> transport;
    std::unique_ptr<gossip::membership> m;
    std::optional<time_point> scheduled;  // the valid tick event's time
    std::vector<seen> views;              // by member index, sized on first use
    std::vector<inbound_step> inbound;    // a ring (sim_options::trace_suspicions)
    std::size_t inbound_next = 0;
  };
  struct cut {
    std::vector<char> from;
    std::vector<char> to;
  };
  struct broadcast_rec {
    time_point sent;
    std::size_t origin = 0;
    std::vector<std::optional<time_point>> got;
  };

  void push(event e);
  void send(std::size_t from, const gossip::address& to, std::vector<std::byte> bytes, bool stream);
  duration sample_latency();
  // The extra delay loss causes a stream (network_model::stream_retransmits); nullopt when the
  // connection fails.
  std::optional<duration> stream_loss_delay();
  double uniform01();
  void process(event& e);
  void deliver(event& e);
  void reschedule(std::size_t i, bool after_tick);
  void start_process(std::size_t i);
  void join_attempt(std::size_t i, std::size_t seed, std::uint64_t gen, duration backoff);
  void on_member_event(std::size_t observer, const gossip::member_event& ev);
  void on_trace(std::size_t observer, const gossip::trace_event& ev);
  void observe(std::size_t observer, const gossip::member& m);
  void fail(std::string what);
  void mix(std::uint64_t v);

  sim_options opt_;
  std::mt19937_64 rng_;
  time_point epoch_;
  time_point now_;
  std::uint64_t next_seq_ = 0;
  std::vector<event> queue_;  // a heap ordered by `later`
  std::vector<std::unique_ptr<slot>> nodes_;
  std::map<gossip::address, std::size_t> by_addr_;
  std::unordered_map<std::string, std::size_t> by_name_;
  std::vector<cut> cuts_;
  // Shared by every node's membership: each distinct node_meta is stored once.
  std::shared_ptr<gossip::meta_pool> pool_ = std::make_shared<gossip::meta_pool>();
  std::map<std::uint64_t, broadcast_rec> broadcasts_;
  std::uint64_t next_broadcast_ = 1;
  struct crash_rec {
    time_point at;
    gossip::address addr;                    // where the crashed process listened
    std::map<std::size_t, time_point> seen;  // observer -> first time it saw the node dead
  };
  std::map<std::size_t, crash_rec> crashes_;  // by node index; the latest crash only
  std::vector<false_death> false_deaths_;
  // Per subject (sim_options::trace_suspicions): steps since no node suspected it, and how many
  // nodes suspect it now.
  struct subject_trace {
    std::vector<trace_step> steps;
    std::size_t open = 0;
    duration refuted_at{};  // its latest refutation
    std::uint32_t refuted_inc = 0;
  };
  void record_inbound(std::size_t i, const inbound_step& step);
  std::vector<inbound_step> inbound_of(std::size_t i) const;
  std::vector<late_clear> late_clears_;
  std::uint64_t late_clear_count_ = 0;
  std::vector<subject_trace> traces_;
  static constexpr std::size_t max_trace_steps = 1'000'000;
  std::vector<violation> violations_;
  std::optional<time_point> next_checkpoint_;
  counters counters_;
  std::uint64_t trace_ = 0xcbf29ce484222325ull;
};

}  // namespace meshdeploy::sim

// A deterministic discrete-event simulator for record replication (node/records/replicator.h):
// N replicators in one process on virtual time, each with its own RocksDB store in a temp dir.
// One event queue ordered by (time, sequence number) holds message deliveries and node ticks;
// every random choice (latency, loss, node seeds) comes from one std::mt19937_64 seeded by
// records_sim_options::seed, so a run replays exactly (trace_hash() proves it).
//
// Network model: messages travel on reliable streams (the replicator's contract) with latency
// base + uniform jitter; `loss` drops a whole message (a stream cut mid-transfer); partitions
// drop messages between groups (at send and at delivery); a crash drops the node's in-flight
// messages both ways, and a restart reopens its data dir (or starts from a wiped one).
//
// Verification is a fake, NOT Ed25519: a record is valid when its signature is the keyed
// BLAKE2b-512 of signing_bytes() under a key only the simulator knows (sign()). Grants must be
// written by the admin key; other records need a stored grant for their writer (else
// unknown_writer, so the pending path runs). Docs: docs/replication.md "Simulator".
#pragma once

#include "node/records/record.h"
#include "node/records/replicator.h"
#include "node/records/store.h"
#include "storage/db.h"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace meshdeploy::sim {

using records::duration;
using records::time_point;

struct records_sim_options {
  std::uint64_t seed = 1;
  std::size_t nodes = 7;
  duration latency_base = std::chrono::milliseconds(1);
  duration latency_jitter = std::chrono::milliseconds(4);
  double loss = 0.0;  // probability that a message is lost (stream cut), in [0, 1]
  records::replicator_config cfg;
  // Where the nodes' data dirs go (one subdirectory each); empty: a fresh temp dir, removed
  // when the simulator is destroyed.
  std::filesystem::path root;
};

struct records_sim_counters {
  std::uint64_t events = 0;
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_delivered = 0;
  std::uint64_t messages_lost = 0;         // by loss
  std::uint64_t messages_partitioned = 0;  // dropped by a partition
  std::uint64_t messages_to_dead = 0;      // dropped by a crash
  std::uint64_t bytes_sent = 0;
};

class records_sim {
 public:
  // The admin key (writer of grants) and operator keys used by the helpers.
  static records::public_key key_of(std::uint8_t b);
  static constexpr std::uint8_t admin = 1;

  explicit records_sim(records_sim_options options);
  ~records_sim();
  records_sim(const records_sim&) = delete;
  records_sim& operator=(const records_sim&) = delete;

  // A record signed for the fake verifier.
  [[nodiscard]] records::record sign(records::record r) const;
  // Builders of signed records: a grant for operator `op` (written by admin), and any record.
  [[nodiscard]] records::record grant(std::uint8_t op, std::uint64_t version = 1) const;
  [[nodiscard]] records::record make(records::record_type t, std::string key,
                                     std::uint64_t version = 1, std::uint8_t writer = 2,
                                     std::size_t payload_bytes = 64) const;

  // Submits r at node i (as the API would). REQUIRES: node i is alive.
  result<bool> publish(std::size_t i, const records::record& r);
  // Delivers a raw message to node i as if `from` sent it (hostile input, replays).
  void inject(std::size_t from, std::size_t i, std::vector<std::byte> bytes);

  // Runs events up to now() + d.
  void run_for(duration d);
  // Runs until pred() holds (checked after every event batch of one instant) or `limit` of
  // virtual time passes. Returns whether pred() held.
  template <class Pred>
  bool run_until(Pred pred, duration limit) {
    const time_point end = now_ + limit;
    while (!pred()) {
      if (!step(end)) return pred();
    }
    return true;
  }

  // Partitions: each listed group can only talk within itself; unlisted nodes form one more
  // group. heal() removes every partition.
  void partition(const std::vector<std::vector<std::size_t>>& groups);
  void heal();
  // Crash drops the node's store and replicator (and messages in flight to or from it).
  void crash(std::size_t i);
  // Restarts a crashed node with its data dir, or with a wiped (empty) one.
  void restart(std::size_t i, bool wipe);
  void set_loss(double loss) { options_.loss = loss; }

  // True when every live node holds the same records: equal sync roots and equal content
  // hashes of every type (all records, every grant version, tombstones).
  [[nodiscard]] bool converged() const;
  // Per live node, the names of types whose content differs from node `reference`'s (for test
  // failure messages).
  [[nodiscard]] std::string describe_divergence() const;
  // BLAKE2b of every record of each type (key order), grant history and tombstones: type name
  // -> hex. Empty map for a dead node.
  [[nodiscard]] std::map<std::string, std::string> content_hashes(std::size_t i) const;

  // True when node i holds a record under (t, key) with at least `version`.
  [[nodiscard]] bool holds(std::size_t i, records::record_type t, const std::string& key,
                           std::uint64_t version = 1) const;

  [[nodiscard]] std::size_t size() const { return nodes_.size(); }
  [[nodiscard]] bool alive(std::size_t i) const;
  [[nodiscard]] time_point now() const { return now_; }
  [[nodiscard]] const records_sim_counters& counters() const { return counters_; }
  [[nodiscard]] records::replicator& replicator(std::size_t i);
  [[nodiscard]] records::store& store(std::size_t i);
  // When each node first stored the record with this sync id (nullopt: not yet).
  [[nodiscard]] std::optional<time_point> stored_at(std::size_t i, const std::string& id) const;
  // How many node processes have stored the record with this sync id (a restarted node that
  // stores it again counts again), and when the last of them did.
  [[nodiscard]] std::size_t stored_count(const std::string& id) const;
  [[nodiscard]] std::optional<time_point> last_stored_at(const std::string& id) const;
  // A hash of every delivery (time, from, to, bytes): equal for equal seeds.
  [[nodiscard]] std::uint64_t trace_hash() const { return trace_; }

 private:
  struct node;
  struct event {
    enum class kind { deliver, tick } what = kind::tick;
    std::size_t to = 0;
    std::size_t from = 0;
    std::uint64_t to_incarnation = 0;
    std::uint64_t from_incarnation = 0;
    std::vector<std::byte> bytes;
  };

  void open_node(std::size_t i);
  void schedule_tick(std::size_t i, time_point at);
  void send(std::size_t from, const std::string& to, std::vector<std::byte> bytes);
  bool reachable(std::size_t a, std::size_t b) const;
  // Processes every event of the next instant (if <= end). False when nothing is left <= end.
  bool step(time_point end);
  void handle(event& e);
  [[nodiscard]] result<void> verify(std::size_t i, const records::record& r) const;

  records_sim_options options_;
  std::filesystem::path root_;
  bool own_root_ = false;
  std::mt19937_64 rng_;
  std::array<unsigned char, 32> sign_key_{};
  time_point now_ = time_point{} + std::chrono::hours(1);
  std::uint64_t seq_ = 0;
  std::map<std::pair<time_point, std::uint64_t>, event> queue_;
  std::vector<std::unique_ptr<node>> nodes_;
  std::map<std::string, std::size_t> index_of_;
  std::map<std::string, std::pair<std::size_t, time_point>> stored_count_;  // id -> (n, last)
  std::vector<int> group_;  // partition group per node (all 0 when healed)
  records_sim_counters counters_;
  std::uint64_t trace_ = 1469598103934665603ULL;
};

}  // namespace meshdeploy::sim

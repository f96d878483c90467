// Record replication in the deterministic simulator (tests/sim/records_sim.h): convergence under
// loss, partitions, restarts with and without the data dir, replays, and a batch of random
// seeds. Every scenario ends by checking that all live nodes hold equal records (per-type content
// hashes, grant history, tombstones via the sync root).
#include "tests/sim/records_sim.h"

#include "node/records/sync_messages.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace meshdeploy::sim {
namespace {

using namespace std::chrono_literals;
using records::record_type;

// A grant for operator 2 at node 0, then `count` records of assorted types published at
// random nodes (only nodes that already hold the grant can publish: the API verifies too).
void publish_workload(records_sim& sim, std::mt19937_64& rng, int count, const std::string& tag) {
  if (!sim.holds(0, record_type::grant, records::to_hex(records_sim::key_of(2)))) {
    ASSERT_TRUE(sim.publish(0, sim.grant(2)).value());
  }
  const record_type types[] = {record_type::application, record_type::group, record_type::intent,
                               record_type::progress, record_type::revision};
  for (int k = 0; k < count; ++k) {
    auto r = sim.make(types[rng() % 5], tag + std::to_string(k), 1 + rng() % 3);
    // Publish where the grant already is; let the network work in between.
    for (int tries = 0; tries < 100; ++tries) {
      const std::size_t i = rng() % sim.size();
      if (!sim.alive(i) || sim.store(i).grant_history(records_sim::key_of(2)).empty()) continue;
      auto res = sim.publish(i, r);
      ASSERT_TRUE(res) << res.error().message;
      break;
    }
    sim.run_for(std::chrono::milliseconds(rng() % 20));
  }
}

std::size_t total_records(records_sim& sim, std::size_t i) {
  std::size_t n = 0;
  for (std::uint8_t t = 1; t <= records::max_record_type; ++t) {
    n += sim.store(i).count(static_cast<record_type>(t)).value();
  }
  return n;
}

TEST(RecordsSimTest, SevenNodesConvergeUnderTenPercentLoss) {
  records_sim sim({.seed = 7, .nodes = 7, .loss = 0.10});
  std::mt19937_64 rng(7);
  publish_workload(sim, rng, 60, "r");
  ASSERT_TRUE(sim.run_until([&] { return sim.converged(); }, 20s)) << sim.describe_divergence();
  EXPECT_EQ(total_records(sim, 3), 61u);
  EXPECT_GT(sim.counters().messages_lost, 0u);
  for (std::size_t i = 0; i < sim.size(); ++i) {
    EXPECT_EQ(sim.replicator(i).stats().pending, 0u);
    EXPECT_TRUE(sim.replicator(i).stats().rejected_by_reason.empty());
  }
}

TEST(RecordsSimTest, FiftyNodesConvergeUnderTenPercentLoss) {
  records_sim sim({.seed = 50, .nodes = 50, .loss = 0.10});
  std::mt19937_64 rng(50);
  publish_workload(sim, rng, 100, "r");
  ASSERT_TRUE(sim.run_until([&] { return sim.converged(); }, 30s)) << sim.describe_divergence();
  EXPECT_EQ(total_records(sim, 49), 101u);
}

TEST(RecordsSimTest, HealedPartitionConvergesWithinAntiEntropyBound) {
  records_sim sim({.seed = 3, .nodes = 7});
  ASSERT_TRUE(sim.publish(0, sim.grant(2)).value());
  sim.run_for(1s);
  sim.partition({{0, 1, 2}, {3, 4, 5, 6}});
  ASSERT_TRUE(sim.publish(1, sim.make(record_type::application, "left")).value());
  ASSERT_TRUE(sim.publish(5, sim.make(record_type::application, "right")).value());
  ASSERT_TRUE(sim.publish(0, sim.make(record_type::config, "c", 2)).value());
  ASSERT_TRUE(sim.publish(6, sim.make(record_type::config, "c", 3)).value());
  sim.run_for(10s);
  EXPECT_FALSE(sim.converged());
  EXPECT_TRUE(sim.holds(2, record_type::application, "left"));
  EXPECT_FALSE(sim.holds(2, record_type::application, "right"));
  sim.heal();
  const auto healed = sim.now();
  // Each node syncs with a random peer every second; with 7 nodes a round crosses the cut with
  // probability ~1/2 per node, and what crosses is pushed on at once. 5 intervals is generous.
  ASSERT_TRUE(sim.run_until([&] { return sim.converged(); }, 5s)) << sim.describe_divergence();
  EXPECT_LE(sim.now() - healed, 5s);
  for (std::size_t i = 0; i < sim.size(); ++i) {
    EXPECT_TRUE(sim.holds(i, record_type::application, "left"));
    EXPECT_TRUE(sim.holds(i, record_type::application, "right"));
    EXPECT_TRUE(sim.holds(i, record_type::config, "c", 3));
  }
}

TEST(RecordsSimTest, RestartWithDataDirKeepsRecordsAndCatchesUp) {
  records_sim sim({.seed = 11, .nodes = 7});
  std::mt19937_64 rng(11);
  publish_workload(sim, rng, 20, "before");
  ASSERT_TRUE(sim.run_until([&] { return sim.converged(); }, 10s));
  sim.crash(4);
  publish_workload(sim, rng, 20, "during");
  sim.restart(4, /*wipe=*/false);
  EXPECT_EQ(total_records(sim, 4), 21u);  // what it had, from its data dir
  ASSERT_TRUE(sim.run_until([&] { return sim.converged(); }, 10s)) << sim.describe_divergence();
  EXPECT_EQ(total_records(sim, 4), 41u);
}

TEST(RecordsSimTest, WipedDataDirCatchesUpFully) {
  records_sim sim({.seed = 12, .nodes = 7, .loss = 0.05});
  std::mt19937_64 rng(12);
  publish_workload(sim, rng, 80, "r");
  ASSERT_TRUE(sim.run_until([&] { return sim.converged(); }, 20s));
  ASSERT_TRUE(sim.store(0).apply_tombstone(record_type::intent, "pruned-elsewhere", 1).value());
  ASSERT_TRUE(sim.run_until([&] { return sim.converged(); }, 20s));
  sim.crash(2);
  sim.restart(2, /*wipe=*/true);
  EXPECT_EQ(total_records(sim, 2), 0u);
  EXPECT_EQ(sim.store(2).index_size(), 0u);
  ASSERT_TRUE(sim.run_until([&] { return sim.converged(); }, 10s)) << sim.describe_divergence();
  EXPECT_EQ(total_records(sim, 2), 81u);
  EXPECT_EQ(sim.store(2).tombstone(record_type::intent, "pruned-elsewhere").value(), 1u);
}

TEST(RecordsSimTest, ReplaysAndForgeriesChangeNothing) {
  records_sim sim({.seed = 21, .nodes = 7});
  std::mt19937_64 rng(21);
  publish_workload(sim, rng, 30, "r");
  ASSERT_TRUE(sim.run_until([&] { return sim.converged(); }, 10s));
  const auto before = sim.content_hashes(0);
  std::vector<std::uint64_t> stored_before;
  for (std::size_t i = 0; i < sim.size(); ++i) {
    stored_before.push_back(sim.replicator(i).stats().stored);
  }
  // Replay every record node 0 holds (same and older versions) to every node, and forgeries.
  records::push_msg replay;
  for (std::uint8_t t = 1; t <= records::max_record_type; ++t) {
    const auto held = sim.store(0).scan(static_cast<record_type>(t)).value();
    for (const auto& r : held) {
      replay.records.push_back(records::encode(r));
      if (r.version > 1) {
        replay.records.push_back(records::encode(sim.make(r.type, r.key, r.version - 1)));
      }
      auto forged = r;
      forged.version += 10;  // signature no longer matches
      replay.records.push_back(records::encode(forged));
    }
  }
  const auto bytes = records::encode_sync_message(replay);
  for (std::size_t i = 1; i < sim.size(); ++i) sim.inject(0, i, bytes);
  sim.run_for(3s);
  EXPECT_TRUE(sim.converged()) << sim.describe_divergence();
  EXPECT_EQ(sim.content_hashes(0), before);
  for (std::size_t i = 1; i < sim.size(); ++i) {
    EXPECT_EQ(sim.content_hashes(i), before) << i;
    EXPECT_EQ(sim.replicator(i).stats().stored, stored_before[i]) << i;
    EXPECT_EQ(sim.replicator(i).stats().rejected_by_reason.at("bad_signature"), 31u) << i;
  }
}

TEST(RecordsSimTest, SameSeedReplaysExactly) {
  std::uint64_t traces[2];
  for (int run = 0; run < 2; ++run) {
    records_sim sim({.seed = 99, .nodes = 9, .loss = 0.1});
    std::mt19937_64 rng(99);
    publish_workload(sim, rng, 30, "r");
    sim.run_for(5s);
    traces[run] = sim.trace_hash();
  }
  EXPECT_EQ(traces[0], traces[1]);
}

TEST(RecordsSimTest, RandomSeedsWithFaultsAlwaysConvergeAfterHeal) {
  for (std::uint64_t seed = 1000; seed < 1012; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const std::size_t n = 5 + rng() % 12;
    records_sim sim({.seed = seed, .nodes = n, .loss = (rng() % 25) / 100.0});
    publish_workload(sim, rng, 20, "a");
    // A partition of a random cut, with publishes on both sides.
    std::vector<std::size_t> left;
    for (std::size_t i = 0; i < n; ++i) {
      if (rng() % 2) left.push_back(i);
    }
    sim.partition({left});
    publish_workload(sim, rng, 20, "b");
    // Crash one node, restart another (with or without its data).
    const std::size_t crashed = 1 + rng() % (n - 1);
    sim.crash(crashed);
    publish_workload(sim, rng, 10, "c");
    sim.run_for(std::chrono::milliseconds(rng() % 3000));
    const std::size_t bounced = 1 + rng() % (n - 1);
    sim.restart(bounced, rng() % 2 == 0);
    sim.heal();
    sim.set_loss(0.0);
    sim.restart(crashed, rng() % 2 == 0);
    ASSERT_TRUE(sim.run_until([&] { return sim.converged(); }, 30s)) << sim.describe_divergence();
    EXPECT_EQ(total_records(sim, 0), total_records(sim, n - 1));
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(sim.replicator(i).stats().pending, 0u);
  }
}

}  // namespace
}  // namespace meshdeploy::sim

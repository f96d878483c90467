// Bundle transfer between bundle_fetch instances wired through an in-test message queue, with
// real files: a fetch delivers the exact bytes, moves past sources that lack the bundle, lie
// about it or stall, and fails with a clear message when no source delivers.
#include "node/swarm/bundle_fetch.h"

#include "node/agent/revision.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <deque>
#include <fstream>
#include <random>

namespace meshdeploy::swarm {
namespace {

namespace fs = std::filesystem;

struct net {
  struct msg {
    std::string from, to;
    std::vector<std::byte> bytes;
  };
  std::deque<msg> queue;
  std::map<std::string, bundle_fetch*> nodes;
  std::set<std::string> silent;  // nodes whose messages are lost
  // Delivers queued messages (bounded).
  void run(time_point now) {
    for (int i = 0; i < 100000 && !queue.empty(); ++i) {
      msg m = std::move(queue.front());
      queue.pop_front();
      if (silent.count(m.from) != 0) continue;
      nodes.at(m.to)->on_message(m.from, m.bytes, now);
    }
  }
};

class BundleFetchTest : public ::testing::Test {
 protected:
  // Writes `n` pseudo-random bytes and returns the bundle's ref.
  bundle_ref make_bundle(const fs::path& file, std::size_t n) {
    std::mt19937 rng(42);
    std::string bytes(n, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    std::ofstream(file, std::ios::binary) << bytes;
    return bundle_ref{"web", agent::hash_file(file).value(), "tar", n};
  }

  std::unique_ptr<bundle_fetch> node(const std::string& name,
                                     std::optional<fs::path> holds = std::nullopt) {
    auto f = std::make_unique<bundle_fetch>(
        fetch_env{[holds](const bundle_ref&) { return holds; },
                  [this, name](const std::string& peer, std::vector<std::byte> b) {
                    net_.queue.push_back({name, peer, std::move(b)});
                  }},
        dir_ / ("work-" + name));
    net_.nodes[name] = f.get();
    return f;
  }

  test::temp_dir dir_{"meshdeploy-fetch"};
  net net_;
  time_point t0 = clock::now();
};

TEST_F(BundleFetchTest, FetchesTheExactBytesInPieces) {
  const auto ref = make_bundle(dir_ / "b.tar", 3 * piece_bytes + 123);
  auto seed = node("seed", dir_ / "b.tar");
  auto host = node("host");
  std::optional<result<fs::path>> got;
  host->fetch(
      ref, {"seed"}, [&](result<fs::path> r) { got = std::move(r); }, t0);
  net_.run(t0);
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->has_value()) << got->error().message;
  EXPECT_EQ(agent::hash_file(got->value()).value(), ref.id);
  EXPECT_EQ(host->stats().pieces_received, 4u);
  EXPECT_EQ(seed->stats().pieces_served, 4u);
}

TEST_F(BundleFetchTest, MovesPastSourcesThatLackOrCorruptTheBundle) {
  const auto ref = make_bundle(dir_ / "b.tar", piece_bytes + 10);
  std::ofstream(dir_ / "evil.tar", std::ios::binary) << std::string(piece_bytes + 10, 'x');
  auto empty = node("empty");
  auto evil = node("evil", dir_ / "evil.tar");
  auto seed = node("seed", dir_ / "b.tar");
  auto host = node("host");
  std::optional<result<fs::path>> got;
  host->fetch(
      ref, {"empty", "evil", "seed"}, [&](result<fs::path> r) { got = std::move(r); }, t0);
  net_.run(t0);
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->has_value()) << got->error().message;
  EXPECT_EQ(agent::hash_file(got->value()).value(), ref.id);
  EXPECT_EQ(host->stats().bad_bundles, 1u);
}

TEST_F(BundleFetchTest, StalledSourceIsDroppedAfterTheTimeoutAndFailureNamesTheSources) {
  const auto ref = make_bundle(dir_ / "b.tar", 100);
  auto mute = node("mute", dir_ / "b.tar");
  auto host = node("host");
  net_.silent.insert("mute");
  std::optional<result<fs::path>> got;
  host->fetch(
      ref, {"mute"}, [&](result<fs::path> r) { got = std::move(r); }, t0);
  net_.run(t0);
  EXPECT_FALSE(got.has_value());
  EXPECT_EQ(host->next_deadline(), t0 + source_timeout);
  host->on_tick(t0 + source_timeout);
  ASSERT_TRUE(got.has_value());
  ASSERT_FALSE(got->has_value());
  EXPECT_NE(got->error().message.find("mute"), std::string::npos) << got->error().message;
  EXPECT_EQ(host->next_deadline(), time_point::max());
}

TEST_F(BundleFetchTest, HostileMessagesAreCountedAndIgnored) {
  auto host = node("host");
  const std::vector<std::vector<std::byte>> junk = {
      {},
      {std::byte{0x93}, std::byte{0x01}},
      encode_piece("web", std::string(64, 'a'), 0, std::vector<std::byte>(10)),  // not asked
      encode_want("web", std::string(65, 'a'), 0, 10),                           // id too long
  };
  for (const auto& j : junk) host->on_message("x", j, t0);
  EXPECT_EQ(host->stats().rejected_messages, 4u);
  EXPECT_TRUE(net_.queue.empty());
}

}  // namespace
}  // namespace meshdeploy::swarm

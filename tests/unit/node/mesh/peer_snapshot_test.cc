#include "node/mesh/peer_snapshot.h"

#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <fstream>

namespace meshdeploy::mesh {
namespace {

TEST(PeerSnapshotTest, SavedAddressesLoadBackInOrder) {
  test::temp_dir dir{"peers"};
  const auto path = dir / "peers";
  ASSERT_TRUE(save_peer_snapshot(path, {"127.0.0.1:7946", "[::1]:8000", "node-2.lan:1"}));
  EXPECT_EQ(load_peer_snapshot(path),
            (std::vector<std::string>{"127.0.0.1:7946", "[::1]:8000", "node-2.lan:1"}));
}

TEST(PeerSnapshotTest, MissingFileIsEmpty) {
  test::temp_dir dir{"peers"};
  std::size_t skipped = 7;
  EXPECT_TRUE(load_peer_snapshot(dir / "nope", &skipped).empty());
  EXPECT_EQ(skipped, 0u);
}

TEST(PeerSnapshotTest, MalformedLinesAreSkippedAndCounted) {
  test::temp_dir dir{"peers"};
  const auto path = dir / "peers";
  std::ofstream(path) << "127.0.0.1:7946\n"
                      << "no-port\n"
                      << ":80\n"
                      << "host:0\n"
                      << "host:70000\n"
                      << "host:12x\n"
                      << "bad host:80\n"
                      << std::string(400, 'a') << ":1\n"
                      << "ok:2\n";
  std::size_t skipped = 0;
  EXPECT_EQ(load_peer_snapshot(path, &skipped),
            (std::vector<std::string>{"127.0.0.1:7946", "ok:2"}));
  EXPECT_EQ(skipped, 7u);
}

TEST(PeerSnapshotTest, AtMostTheLimitIsKept) {
  test::temp_dir dir{"peers"};
  std::vector<std::string> many;
  for (int i = 1; i <= 100; ++i) many.push_back("h:" + std::to_string(i));
  ASSERT_TRUE(save_peer_snapshot(dir / "peers", many));
  EXPECT_EQ(load_peer_snapshot(dir / "peers").size(), max_peer_snapshot);
}

}  // namespace
}  // namespace meshdeploy::mesh

#include "node/swarm/piece_picker.h"

#include <gtest/gtest.h>

#include <map>

namespace meshdeploy::swarm {
namespace {

auto never = [](std::size_t) { return false; };

TEST(PiecePickerTest, PicksTheRarestPieceThePeerHolds) {
  piece_picker p(4, 1);
  p.add_peer({true, true, true, true});
  p.add_peer({true, true, false, true});
  p.add_peer({true, false, false, true});
  // availability: 3, 2, 1, 3
  EXPECT_EQ(p.pick({true, true, true, true}, false, never), 2u);
  EXPECT_EQ(p.pick({true, true, false, true}, false, never), 1u);
}

TEST(PiecePickerTest, SkipsHeldAndRequestedPieces) {
  piece_picker p(3, 1);
  p.add_peer({true, true, true});
  p.set_held(0);
  p.requested(1);
  EXPECT_EQ(p.pick({true, true, true}, false, never), 2u);
  p.requested(2);
  EXPECT_EQ(p.pick({true, true, true}, false, never), std::nullopt);
  p.unrequested(2);
  EXPECT_EQ(p.pick({true, true, true}, false, never), 2u);
}

TEST(PiecePickerTest, ChoosesUniformlyAmongEquallyRarePieces) {
  piece_picker p(4, 42);
  p.add_peer({true, true, true, true});
  std::map<std::size_t, int> seen;
  for (int i = 0; i < 4000; ++i) ++seen[*p.pick({true, true, true, true}, false, never)];
  ASSERT_EQ(seen.size(), 4u);
  for (const auto& [piece, n] : seen) {
    EXPECT_GT(n, 800) << piece;
    EXPECT_LT(n, 1200) << piece;
  }
}

TEST(PiecePickerTest, EndgameAsksAgainOnlyWhenEveryMissingPieceIsAskedFor) {
  piece_picker p(2, 1);
  p.add_peer({true, true});
  p.requested(0);
  // Piece 1 is still unasked: no endgame copy of piece 0.
  EXPECT_EQ(p.pick({true, false}, true, never), std::nullopt);
  p.requested(1);
  // Everything asked: a second peer may be asked for either, not one it was asked already.
  auto again = p.pick({true, true}, true, [](std::size_t i) { return i == 1; });
  EXPECT_EQ(again, 0u);
  p.requested(0);
  // At most two copies in flight.
  EXPECT_EQ(p.pick({true, false}, true, never), std::nullopt);
  EXPECT_EQ(p.pick({true, true}, false, never), std::nullopt);  // endgame off
}

TEST(PiecePickerTest, CountsFollowPeersComingAndGoing) {
  piece_picker p(3, 1);
  p.add_peer({true, false, true});
  p.add_peer_piece(1);
  EXPECT_EQ(p.availability(0), 1u);
  EXPECT_EQ(p.availability(1), 1u);
  p.remove_peer({true, true, true});
  p.remove_peer({true, true, true});  // never below zero
  EXPECT_EQ(p.availability(0), 0u);
  EXPECT_EQ(p.availability(2), 0u);
  p.set_held(2);
  p.set_held(2);
  EXPECT_EQ(p.held_count(), 1u);
}

}  // namespace
}  // namespace meshdeploy::swarm

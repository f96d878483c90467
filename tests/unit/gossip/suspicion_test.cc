#include "gossip/suspicion.h"

#include "gossip/awareness.h"

#include <gtest/gtest.h>

namespace meshdeploy::gossip {
namespace {

using std::chrono::milliseconds;

TEST(SuspicionTest, DeadlineStartsAtMaxAndFallsToMinWithIndependentConfirmations) {
  const time_point t0{};
  suspicion s("accuser", 3, milliseconds(2000), milliseconds(30000), t0);
  EXPECT_EQ(s.deadline(), t0 + milliseconds(30000));
  EXPECT_FALSE(s.confirm("accuser"));  // the accuser does not confirm itself
  EXPECT_TRUE(s.confirm("b"));
  EXPECT_EQ(s.deadline(), t0 + milliseconds(16000));
  EXPECT_FALSE(s.confirm("b"));  // not independent
  EXPECT_EQ(s.deadline(), t0 + milliseconds(16000));
  EXPECT_TRUE(s.confirm("c"));
  EXPECT_TRUE(s.confirm("d"));
  EXPECT_EQ(s.deadline(), t0 + milliseconds(2000));
  EXPECT_FALSE(s.confirm("e"));  // already at the floor
  EXPECT_EQ(s.confirmations(), 3u);
}

TEST(SuspicionTest, NoExpectedConfirmationsMeansMinTimeout) {
  const time_point t0{};
  suspicion s("a", 0, milliseconds(4000), milliseconds(24000), t0);
  EXPECT_EQ(s.deadline(), t0 + milliseconds(4000));
  EXPECT_FALSE(s.confirm("b"));
}

TEST(AwarenessTest, ScoreIsClampedAndScalesDurations) {
  awareness a(8);
  EXPECT_EQ(a.scale(milliseconds(500)), milliseconds(500));
  a.apply_delta(1);
  EXPECT_EQ(a.scale(milliseconds(500)), milliseconds(1000));
  a.apply_delta(100);
  EXPECT_EQ(a.score(), 7);
  EXPECT_EQ(a.scale(milliseconds(1000)), milliseconds(8000));
  a.apply_delta(-100);
  EXPECT_EQ(a.score(), 0);
}

}  // namespace
}  // namespace meshdeploy::gossip

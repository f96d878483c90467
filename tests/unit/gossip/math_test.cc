#include "gossip/math.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>

namespace meshdeploy::gossip {
namespace {

using std::chrono::milliseconds;

TEST(MathTest, RetransmitLimitIsMultTimesCeilLog10OfNodesPlusOne) {
  struct row {
    unsigned mult;
    std::size_t n;
    std::size_t want;
  };
  const row rows[] = {
      {4, 0, 0},    {4, 1, 4},     {4, 9, 4},      {4, 10, 8}, {4, 99, 8},
      {4, 100, 12}, {3, 1000, 12}, {2, 10000, 10}, {0, 50, 0},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(retransmit_limit(r.mult, r.n), r.want) << "mult=" << r.mult << " n=" << r.n;
  }
}

TEST(MathTest, SuspicionMinTimeoutScalesWithLog10OfClusterSize) {
  struct row {
    unsigned mult;
    std::size_t n;
    milliseconds interval;
    milliseconds want;
  };
  const row rows[] = {
      {4, 0, milliseconds(1000), milliseconds(4000)},
      {4, 1, milliseconds(1000), milliseconds(4000)},
      {4, 10, milliseconds(1000), milliseconds(4000)},
      {4, 100, milliseconds(1000), milliseconds(8000)},
      {4, 1000, milliseconds(1000), milliseconds(12000)},
      {3, 100, milliseconds(500), milliseconds(3000)},
      {5, 1000, milliseconds(200), milliseconds(3000)},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(suspicion_min_timeout(r.mult, r.n, r.interval), r.want) << "n=" << r.n;
  }
}

TEST(MathTest, SuspicionTimeoutShrinksFromMaxToMinWithConfirmations) {
  // Values from Lifeguard's formula: max - (max-min) * log(c+1)/log(k+1).
  struct row {
    std::size_t expected;
    std::size_t confirmations;
    milliseconds want;
  };
  const milliseconds min(2000), max(30000);
  const row rows[] = {
      {3, 0, milliseconds(30000)}, {3, 1, milliseconds(16000)}, {3, 2, milliseconds(7810)},
      {3, 3, milliseconds(2000)},  {3, 4, milliseconds(2000)},  {0, 0, milliseconds(2000)},
      {1, 0, milliseconds(30000)}, {1, 1, milliseconds(2000)},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(suspicion_timeout(min, max, r.expected, r.confirmations), r.want)
        << "k=" << r.expected << " c=" << r.confirmations;
  }
}

TEST(MathTest, ExpectedConfirmationsIsMultMinusTwoUnlessClusterTooSmall) {
  EXPECT_EQ(suspicion_expected_confirmations(4, 100), 2u);
  EXPECT_EQ(suspicion_expected_confirmations(4, 4), 2u);
  EXPECT_EQ(suspicion_expected_confirmations(4, 3), 0u);
  EXPECT_EQ(suspicion_expected_confirmations(5, 5), 3u);
  EXPECT_EQ(suspicion_expected_confirmations(1, 100), 0u);
  EXPECT_EQ(suspicion_expected_confirmations(4, 0), 0u);
}

TEST(MathTest, RandomKReturnsDistinctIndicesInRange) {
  std::mt19937_64 rng(7);
  for (std::size_t n : {0u, 1u, 2u, 5u, 50u}) {
    for (std::size_t k : {0u, 1u, 3u, 10u, 100u}) {
      const auto got = random_k(n, k, rng);
      EXPECT_EQ(got.size(), std::min(n, k));
      std::set<std::size_t> unique(got.begin(), got.end());
      EXPECT_EQ(unique.size(), got.size());
      for (auto i : got) EXPECT_LT(i, n);
    }
  }
}

TEST(MathTest, RandomKIsRoughlyUniform) {
  std::mt19937_64 rng(42);
  std::size_t hits[10] = {};
  for (int i = 0; i < 10000; ++i) {
    for (auto j : random_k(10, 3, rng)) ++hits[j];
  }
  // Expected 3000 each; a biased picker (e.g. always the first k) would be far off.
  for (auto h : hits) {
    EXPECT_GT(h, 2700u);
    EXPECT_LT(h, 3300u);
  }
}

TEST(MathTest, SameSeedGivesSameShuffle) {
  std::vector<int> a{1, 2, 3, 4, 5, 6, 7, 8}, b = a;
  std::mt19937_64 r1(99), r2(99);
  shuffle(a, r1);
  shuffle(b, r2);
  EXPECT_EQ(a, b);
  std::sort(a.begin(), a.end());
  EXPECT_EQ(a, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8}));
}

}  // namespace
}  // namespace meshdeploy::gossip

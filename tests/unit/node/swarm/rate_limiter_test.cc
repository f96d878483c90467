// The swarm's token bucket on simulated time: unlimited, the initial burst, the steady rate
// over ten simulated seconds, debt after a large take, and refills capped at the burst.
#include "node/swarm/rate_limiter.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace meshdeploy::swarm {
namespace {

using namespace std::chrono_literals;
using tp = rate_limiter::clock::time_point;

const tp t0 = tp{} + 1000s;  // an arbitrary start; the limiter must not assume zero

TEST(RateLimiterTest, ZeroRateIsUnlimited) {
  rate_limiter r(0, 1);
  EXPECT_TRUE(r.unlimited());
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(r.take(std::uint64_t{1} << 40, t0), t0);
  }
  EXPECT_EQ(r.ready_at(t0), t0);
}

TEST(RateLimiterTest, BurstGoesAtOnceThenTheRateApplies) {
  // 1 MB/s, 4 pieces of 256 KB as burst.
  rate_limiter r(1'000'000, 1'000'000);
  EXPECT_FALSE(r.unlimited());
  EXPECT_EQ(r.rate(), 1'000'000u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(r.take(250'000, t0), t0) << i;
  // The bucket is at exactly zero: one more take still goes now and runs into debt.
  EXPECT_EQ(r.take(250'000, t0), t0);
  EXPECT_EQ(r.ready_at(t0), t0 + 250ms);
  // A take in debt waits for the debt to be repaid and adds its own bytes to it.
  EXPECT_EQ(r.take(250'000, t0), t0 + 250ms);
  EXPECT_EQ(r.take(250'000, t0 + 100ms), t0 + 500ms);
  EXPECT_EQ(r.ready_at(t0 + 100ms), t0 + 750ms);
}

TEST(RateLimiterTest, LargeTakeLeavesDebtThatIsRepaidAtTheRate) {
  rate_limiter r(100'000, 10'000);
  // A piece larger than the burst is never split: it goes now, and the next waits.
  EXPECT_EQ(r.take(1'000'000, t0), t0);
  // Debt of 990,000 bytes at 100,000 B/s: 9.9 s.
  EXPECT_EQ(r.ready_at(t0), t0 + 9900ms);
  EXPECT_EQ(r.ready_at(t0 + 5s), t0 + 9900ms);
  EXPECT_EQ(r.ready_at(t0 + 9900ms), t0 + 9900ms);
  EXPECT_EQ(r.take(1, t0 + 9900ms), t0 + 9900ms);
  EXPECT_EQ(r.ready_at(t0 + 9900ms), t0 + 9900ms + 10us);
}

TEST(RateLimiterTest, IdleRefillIsCappedAtTheBurst) {
  rate_limiter r(1000, 500);
  EXPECT_EQ(r.take(500, t0), t0);
  // An hour idle refills 500 bytes, not 3.6 MB.
  const tp later = t0 + 1h;
  EXPECT_EQ(r.take(500, later), later);
  EXPECT_EQ(r.take(500, later), later);  // zero balance still goes
  EXPECT_EQ(r.ready_at(later), later + 500ms);
}

TEST(RateLimiterTest, BurstIsAtLeastOneByte) {
  rate_limiter r(10, 0);
  EXPECT_EQ(r.take(1, t0), t0);
  EXPECT_EQ(r.take(1, t0), t0);  // balance 0 after the first
  EXPECT_EQ(r.ready_at(t0), t0 + 100ms);
}

// Bytes granted within [start, start + 10 s) by a sender that takes pieces back to back and
// sends each at the time take() returns.
std::uint64_t granted_in_ten_seconds(std::uint64_t rate, std::uint64_t burst, std::uint64_t piece) {
  rate_limiter r(rate, burst);
  tp now = t0;
  const tp end = t0 + 10s;
  std::uint64_t granted = 0;
  for (int i = 0; i < 10'000'000; ++i) {
    const tp at = r.take(piece, now);
    EXPECT_GE(at, now);
    if (at >= end) return granted;
    granted += piece;
    now = at;
  }
  ADD_FAILURE() << "the loop did not reach the end of the 10 s";
  return granted;
}

TEST(RateLimiterTest, SteadyRateOverTenSecondsMatchesRateTimesTimePlusBurst) {
  struct row {
    std::uint64_t rate, burst, piece;
  };
  for (const row c :
       {row{50'000'000 / 8, 1 << 20, 262'144}, row{4'000'000, 262'144, 262'144},
        row{100'000'000, 4 << 20, 262'144}, row{1'000'000, 100'000, 65'536}, row{12'345, 1000, 100},
        row{3'000'000, 1, 16'384}, row{1'000'000, 262'144, 262'144}}) {
    const double expected = static_cast<double>(c.rate) * 10 + static_cast<double>(c.burst);
    const auto got = static_cast<double>(granted_in_ten_seconds(c.rate, c.burst, c.piece));
    // Pieces are never split, so the count is off by less than one piece either way: the
    // last piece granted runs into debt, and the window ends part-way through a wait.
    EXPECT_NEAR(got, expected, static_cast<double>(c.piece))
        << "rate " << c.rate << " burst " << c.burst << " piece " << c.piece;
    // Within 1 % whenever a piece is under 1 % of the total (all rows but the last).
    if (static_cast<double>(c.piece) * 100 <= expected) {
      EXPECT_NEAR(got, expected, expected * 0.01)
          << "rate " << c.rate << " burst " << c.burst << " piece " << c.piece;
    }
  }
}

TEST(RateLimiterTest, ManyCallersAtOneInstantQueueBehindEachOther) {
  rate_limiter r(1000, 1);
  EXPECT_EQ(r.take(1, t0), t0);
  tp last = r.take(10, t0);
  EXPECT_EQ(last, t0);  // the balance was exactly zero
  for (int i = 2; i <= 100; ++i) {
    const tp at = r.take(10, t0);
    EXPECT_GT(at, last) << i;
    last = at;
  }
  // 1 byte then 100 x 10 bytes at 1000 B/s: the last goes when 990 bytes of debt are repaid.
  EXPECT_EQ(last, t0 + 990ms);
}

TEST(RateLimiterTest, TimeGoingBackwardsDoesNotRefill) {
  rate_limiter r(1000, 100);
  EXPECT_EQ(r.take(200, t0 + 1s), t0 + 1s);  // balance -100
  // An earlier `now` (a caller bug) neither refills nor moves the debt's end earlier.
  EXPECT_EQ(r.ready_at(t0), t0 + 1s + 100ms);
  EXPECT_EQ(r.take(100, t0), t0 + 1s + 100ms);
  EXPECT_EQ(r.ready_at(t0 + 1s), t0 + 1s + 200ms);
}

TEST(RateLimiterTest, HugeDebtDoesNotOverflowTheClock) {
  rate_limiter r(1, 1);
  EXPECT_EQ(r.take(UINT64_MAX, t0), t0);
  const tp at = r.ready_at(t0);
  EXPECT_GT(at, t0 + 24h * 365);
  EXPECT_LT(at, t0 + 24h * 365 * 10);
}

}  // namespace
}  // namespace meshdeploy::swarm

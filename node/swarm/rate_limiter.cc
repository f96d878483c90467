#include "node/swarm/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace meshdeploy::swarm {

namespace {

// A balance this close below zero counts as zero: ready_at() rounds waits up to whole
// nanoseconds, and the refill that follows may land a rounding error short of zero.
constexpr double epsilon_bytes = 1e-6;
// Waits are capped (a single take of 2^64 bytes at 1 B/s would overflow the clock).
constexpr double max_wait_ns = 1e17;  // about three years

// Bytes that `rate` adds in `elapsed`. Computed from whole nanoseconds (not from a double
// number of seconds) so that round figures stay exact: 100 ms at 1 MB/s is 100,000 bytes.
double bytes_in(rate_limiter::clock::duration elapsed, std::uint64_t rate) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
  return static_cast<double>(ns) * static_cast<double>(rate) / 1e9;
}

}  // namespace

rate_limiter::rate_limiter(std::uint64_t bytes_per_second, std::uint64_t burst)
    : rate_(bytes_per_second),
      burst_(static_cast<double>(std::max<std::uint64_t>(burst, 1))),
      balance_(burst_) {}

void rate_limiter::refill(clock::time_point now) {
  if (!started_) {
    // The bucket starts full at the first call: an idle node may send a burst at once.
    started_ = true;
    last_ = now;
    return;
  }
  if (now <= last_) return;  // time never runs backwards here (a caller bug if it did)
  balance_ = std::min(burst_, balance_ + bytes_in(now - last_, rate_));
  last_ = now;
}

rate_limiter::clock::time_point rate_limiter::take(std::uint64_t bytes, clock::time_point now) {
  if (unlimited()) return now;
  refill(now);
  const clock::time_point at = ready_at(now);
  // The bytes count at once, even when they go out later: a caller asking again before `at`
  // queues behind them.
  balance_ -= static_cast<double>(bytes);
  return at;
}

rate_limiter::clock::time_point rate_limiter::ready_at(clock::time_point now) const {
  if (unlimited()) return now;
  double balance = balance_;
  if (started_ && now > last_) balance = std::min(burst_, balance + bytes_in(now - last_, rate_));
  if (balance > -epsilon_bytes) return now;
  // The debt is repaid counting from the later of `now` and the last call.
  const clock::time_point from = started_ ? std::max(now, last_) : now;
  // Rounded up, so that at the returned time the debt is repaid, never a nanosecond short.
  const double ns = std::min(std::ceil(-balance * 1e9 / static_cast<double>(rate_)), max_wait_ns);
  return from + std::chrono::duration_cast<clock::duration>(
                    std::chrono::nanoseconds(static_cast<std::int64_t>(ns)));
}

}  // namespace meshdeploy::swarm

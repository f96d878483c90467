// A token bucket for the swarm's --max-upload-rate / --max-download-rate: sans-IO, time comes
// in as arguments. Debt is allowed (a 256 KiB piece is never split), so the caller after a
// large take waits until the bucket is back to zero.
//
// Thread safety: not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>

namespace meshdeploy::swarm {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  // bytes_per_second == 0: unlimited (take() always returns `now`). `burst`: the most bytes
  // that may go at once after an idle period (at least 1).
  rate_limiter(std::uint64_t bytes_per_second, std::uint64_t burst);

  [[nodiscard]] bool unlimited() const { return rate_ == 0; }
  [[nodiscard]] std::uint64_t rate() const { return rate_; }

  // The time at which `bytes` more may be sent/received, and records them as taken: `now`
  // when the bucket holds a positive balance (the balance may go negative), else the moment
  // it returns to zero. Calls must come with non-decreasing `now`.
  clock::time_point take(std::uint64_t bytes, clock::time_point now);
  // When a take() at `now` would return `now` again (now, or the moment the debt is repaid).
  [[nodiscard]] clock::time_point ready_at(clock::time_point now) const;

 private:
  void refill(clock::time_point now);

  std::uint64_t rate_;
  double burst_;
  double balance_;  // bytes; negative = debt
  clock::time_point last_{};
  bool started_ = false;
};

}  // namespace meshdeploy::swarm

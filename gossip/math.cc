#include "gossip/math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace meshdeploy::gossip {

std::size_t retransmit_limit(unsigned mult, std::size_t num_nodes) {
  const double scale = std::ceil(std::log10(static_cast<double>(num_nodes) + 1.0));
  return static_cast<std::size_t>(mult) * static_cast<std::size_t>(scale);
}

std::chrono::milliseconds suspicion_min_timeout(unsigned mult, std::size_t num_nodes,
                                                std::chrono::milliseconds interval) {
  const double n = static_cast<double>(std::max<std::size_t>(1, num_nodes));
  const double scale = std::max(1.0, std::log10(n));
  // Milliseconds are fine-grained enough and keep the arithmetic exact for tests.
  return std::chrono::milliseconds(static_cast<std::int64_t>(
      static_cast<double>(mult) * scale * static_cast<double>(interval.count())));
}

std::chrono::milliseconds suspicion_timeout(std::chrono::milliseconds min,
                                            std::chrono::milliseconds max, std::size_t expected,
                                            std::size_t confirmations) {
  if (expected == 0 || confirmations >= expected) return min;
  const double frac = std::log(static_cast<double>(confirmations) + 1.0) /
                      std::log(static_cast<double>(expected) + 1.0);
  const double raw =
      static_cast<double>(max.count()) - frac * static_cast<double>((max - min).count());
  const auto t = std::chrono::milliseconds(static_cast<std::int64_t>(std::floor(raw)));
  return std::max(t, min);
}

std::size_t suspicion_expected_confirmations(unsigned mult, std::size_t num_nodes) {
  if (mult < 2) return 0;
  const std::size_t k = mult - 2;
  // The accuser and the suspect cannot confirm; with fewer others than k, waiting for k
  // confirmations would always run to the maximum, so expect none.
  if (num_nodes < 2 || num_nodes - 2 < k) return 0;
  return k;
}

std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t n) {
  // Lemire-style rejection keeps the result unbiased.
  const std::uint64_t limit =
      std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
  // Each draw is rejected with probability < 2^-1 (usually far less); 64 draws bound the loop.
  std::uint64_t x = rng();
  for (int i = 0; i < 64 && x >= limit; ++i) x = rng();
  return x % n;
}

std::vector<std::size_t> random_k(std::size_t n, std::size_t k, std::mt19937_64& rng) {
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  // Partial Fisher-Yates: only the first k positions need to be random.
  const std::size_t take = std::min(n, k);
  for (std::size_t i = 0; i < take; ++i) {
    std::swap(idx[i], idx[i + uniform_below(rng, n - i)]);
  }
  idx.resize(take);
  return idx;
}

}  // namespace meshdeploy::gossip

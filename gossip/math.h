// Pure protocol math (no state, no I/O), table-tested in
// tests/unit/gossip/math_test.cc. See docs/gossip.md for the formulas' origin
// (SWIM, Lifeguard, memberlist's util.go).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace meshdeploy::gossip {

// How many times a broadcast is sent before it is dropped from the queue:
// mult * ceil(log10(num_nodes + 1)). num_nodes counts the local node too.
std::size_t retransmit_limit(unsigned mult, std::size_t num_nodes);

// The floor of the suspicion timeout for a cluster of num_nodes:
// mult * max(1, log10(max(1, num_nodes))) * interval, rounded down to milliseconds.
std::chrono::milliseconds suspicion_min_timeout(unsigned mult, std::size_t num_nodes,
                                                std::chrono::milliseconds interval);

// Lifeguard's dynamic suspicion timeout: starts at `max` with no confirmations and falls
// logarithmically to `min` once `expected` independent confirmations have arrived:
//   max - (max - min) * log(confirmations + 1) / log(expected + 1), never below min.
// With expected == 0 the result is min. REQUIRES: min <= max.
std::chrono::milliseconds suspicion_timeout(std::chrono::milliseconds min,
                                            std::chrono::milliseconds max, std::size_t expected,
                                            std::size_t confirmations);

// How many independent confirmations a suspicion waits for: mult - 2, or 0 when the cluster is
// too small to provide them (num_nodes - 2 < mult - 2).
std::size_t suspicion_expected_confirmations(unsigned mult, std::size_t num_nodes);

// Uniform integer in [0, n) from a 64-bit engine, independent of the standard library's
// distribution implementation (so simulations replay identically everywhere). REQUIRES: n > 0.
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t n);

// Fisher-Yates shuffle with uniform_below.
template <class T>
void shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (std::size_t i = v.size(); i > 1; --i) {
    std::swap(v[i - 1], v[uniform_below(rng, i)]);
  }
}

// k distinct indices in [0, n) chosen uniformly (all of them, shuffled, when k >= n).
std::vector<std::size_t> random_k(std::size_t n, std::size_t k, std::mt19937_64& rng);

}  // namespace meshdeploy::gossip

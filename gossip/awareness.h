// Lifeguard's local health awareness: a score that rises when this node sees
// signs that it is itself slow or cut off (missed nacks, failed probes,
// having to refute suspicion about itself) and falls with successful probes.
// Probe interval and timeout are scaled by it, so an unhealthy node probes
// less aggressively instead of accusing healthy peers.
#pragma once

#include "gossip/config.h"

namespace meshdeploy::gossip {

// Threading: a plain value owned by membership (node executor only).
class awareness {
 public:
  // Score is kept in [0, max_multiplier). REQUIRES: max_multiplier >= 1.
  explicit awareness(int max_multiplier) : max_(max_multiplier) {}

  // Adds delta (positive = less healthy) and clamps.
  void apply_delta(int delta);

  // 0 is healthy.
  [[nodiscard]] int score() const { return score_; }

  // d * (score + 1).
  [[nodiscard]] duration scale(duration d) const { return d * (score_ + 1); }

 private:
  int max_;
  int score_ = 0;
};

}  // namespace meshdeploy::gossip

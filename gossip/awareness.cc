#include "gossip/awareness.h"

#include <algorithm>

namespace meshdeploy::gossip {

void awareness::apply_delta(int delta) {
  score_ = std::clamp(score_ + delta, 0, std::max(0, max_ - 1));
}

}  // namespace meshdeploy::gossip

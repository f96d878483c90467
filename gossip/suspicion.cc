#include "gossip/suspicion.h"

#include "gossip/math.h"

#include <utility>

namespace meshdeploy::gossip {

suspicion::suspicion(std::string accuser, std::size_t expected, std::chrono::milliseconds min,
                     std::chrono::milliseconds max, time_point start)
    : accuser_(std::move(accuser)), expected_(expected), min_(min), max_(max), start_(start) {}

bool suspicion::confirm(const std::string& from) {
  // Beyond `expected` the timeout is already at its floor; remembering more names would only
  // cost memory, so extra confirmations are not "new" and are not re-gossiped.
  if (confirmed_.size() >= expected_) return false;
  if (from == accuser_) return false;
  return confirmed_.insert(from).second;
}

time_point suspicion::deadline() const {
  return start_ + suspicion_timeout(min_, max_, expected_, confirmed_.size());
}

}  // namespace meshdeploy::gossip

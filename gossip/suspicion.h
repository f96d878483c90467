// Lifeguard's dynamic suspicion timer for one suspected member, without any
// clock or timer of its own: it computes a deadline that membership compares
// with the `now` it is given.
#pragma once

#include "gossip/config.h"

#include <chrono>
#include <cstddef>
#include <set>
#include <string>

namespace meshdeploy::gossip {

// Threading: a plain value owned by membership (node executor only).
class suspicion {
 public:
  // Starts a suspicion raised by `accuser` at `start`. The timeout is `max` with no
  // confirmations and shrinks towards `min` as `expected` independent confirmations
  // arrive (gossip/math.h suspicion_timeout). REQUIRES: min <= max.
  suspicion(std::string accuser, std::size_t expected, std::chrono::milliseconds min,
            std::chrono::milliseconds max, time_point start);

  // Records that `from` also suspects the member. Returns true when it is a new, independent
  // confirmation (not the accuser, not seen before, and still needed), which moves the
  // deadline earlier; the caller then re-gossips the suspicion. Returns false otherwise.
  bool confirm(const std::string& from);

  // When the member is to be declared dead if nothing refutes the suspicion.
  [[nodiscard]] time_point deadline() const;

  [[nodiscard]] std::size_t confirmations() const { return confirmed_.size(); }
  [[nodiscard]] time_point start() const { return start_; }

 private:
  std::string accuser_;
  std::size_t expected_;
  std::chrono::milliseconds min_;
  std::chrono::milliseconds max_;
  time_point start_;
  std::set<std::string> confirmed_;
};

}  // namespace meshdeploy::gossip

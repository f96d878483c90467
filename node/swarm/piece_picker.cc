#include "node/swarm/piece_picker.h"

namespace meshdeploy::swarm {

piece_picker::piece_picker(std::size_t pieces, std::uint64_t seed)
    : held_(pieces, false),
      avail_(pieces, 0),
      asked_(pieces, 0),
      unasked_missing_(pieces),
      rng_(seed) {}

void piece_picker::set_held(std::size_t i) {
  if (i >= held_.size() || held_[i]) return;
  held_[i] = true;
  ++held_count_;
  if (asked_[i] == 0) --unasked_missing_;
}

void piece_picker::add_peer_piece(std::size_t i) {
  if (i < avail_.size()) ++avail_[i];
}

void piece_picker::add_peer(const std::vector<bool>& its) {
  for (std::size_t i = 0; i < its.size() && i < avail_.size(); ++i) {
    if (its[i]) ++avail_[i];
  }
}

void piece_picker::remove_peer(const std::vector<bool>& its) {
  for (std::size_t i = 0; i < its.size() && i < avail_.size(); ++i) {
    if (its[i] && avail_[i] > 0) --avail_[i];
  }
}

void piece_picker::requested(std::size_t i) {
  if (i >= asked_.size()) return;
  if (asked_[i]++ == 0 && !held_[i]) --unasked_missing_;
}

void piece_picker::unrequested(std::size_t i) {
  if (i >= asked_.size() || asked_[i] == 0) return;
  if (--asked_[i] == 0 && !held_[i]) ++unasked_missing_;
}

}  // namespace meshdeploy::swarm

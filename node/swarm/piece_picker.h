// Which piece to ask a peer for next (docs/swarm.md "Scheduling"): rarest first among the
// pieces the peer holds and this node lacks, random among equally rare ones, so that copies
// spread evenly and no piece is left held by one node only; in the endgame (every missing piece
// already asked for) a piece asked of another peer may be asked again, so one slow peer cannot
// hold back the last pieces. Sans-IO and deterministic for a given seed.
//
// Thread safety: not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace meshdeploy::swarm {

class piece_picker {
 public:
  piece_picker(std::size_t pieces, std::uint64_t seed);

  [[nodiscard]] std::size_t pieces() const { return held_.size(); }
  [[nodiscard]] bool held(std::size_t i) const { return held_[i]; }
  [[nodiscard]] std::size_t held_count() const { return held_count_; }
  [[nodiscard]] std::size_t availability(std::size_t i) const { return avail_[i]; }

  // This node now holds piece i (idempotent).
  void set_held(std::size_t i);
  // A peer announced piece i / a peer holding `its` pieces left (counts never go below zero).
  void add_peer_piece(std::size_t i);
  void add_peer(const std::vector<bool>& its);
  void remove_peer(const std::vector<bool>& its);

  // Marks piece i as asked for (once per peer asked) / no longer asked of one peer.
  void requested(std::size_t i);
  void unrequested(std::size_t i);
  [[nodiscard]] std::size_t requests(std::size_t i) const { return asked_[i]; }

  // The next piece to ask the peer holding `peer` for: the rarest of the pieces it holds, this
  // node lacks and nobody was asked for, random among equals; when no such piece exists
  // anywhere (endgame) and `endgame` is true, the least asked-for of the missing pieces the peer
  // holds that `asked_of_peer(i)` says were not already asked of this peer, if asked of fewer
  // than max_endgame_copies peers. nullopt when nothing fits.
  template <typename AskedOfPeer>
  std::optional<std::size_t> pick(const std::vector<bool>& peer, bool endgame,
                                  AskedOfPeer asked_of_peer);

  static constexpr std::size_t max_endgame_copies = 2;

 private:
  // Pieces neither held nor asked for: when zero, the download is in its endgame.
  [[nodiscard]] std::size_t unrequested_missing() const { return unasked_missing_; }

  std::vector<bool> held_;
  std::vector<std::uint32_t> avail_;
  std::vector<std::uint32_t> asked_;
  std::size_t held_count_ = 0;
  std::size_t unasked_missing_ = 0;
  std::mt19937_64 rng_;
};

template <typename AskedOfPeer>
std::optional<std::size_t> piece_picker::pick(const std::vector<bool>& peer, bool endgame,
                                              AskedOfPeer asked_of_peer) {
  const std::size_t n = std::min(peer.size(), held_.size());
  std::optional<std::size_t> best;
  std::uint32_t best_key = 0;
  std::uint64_t ties = 0;
  auto consider = [&](std::size_t i, std::uint32_t key) {
    if (!best || key < best_key) {
      best = i;
      best_key = key;
      ties = 1;
    } else if (key == best_key &&
               std::uniform_int_distribution<std::uint64_t>(0, ties++)(rng_) == 0) {
      best = i;  // reservoir sampling: each of the equally rare is kept with probability 1/k
    }
  };
  for (std::size_t i = 0; i < n; ++i) {
    if (peer[i] && !held_[i] && asked_[i] == 0) consider(i, avail_[i]);
  }
  if (best || !endgame || unasked_missing_ != 0) return best;
  for (std::size_t i = 0; i < n; ++i) {
    if (peer[i] && !held_[i] && asked_[i] < max_endgame_copies && !asked_of_peer(i)) {
      consider(i, asked_[i]);
    }
  }
  return best;
}

}  // namespace meshdeploy::swarm

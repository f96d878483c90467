// Interning of node metadata: equal node_meta values share one immutable copy. A membership
// stores each member's metadata through its pool, so a node holds one copy per member; memberships
// that share one pool (the simulator runs thousands in one process) hold one copy per distinct
// metadata in total instead of one per (observer, member) pair.
#pragma once

#include "gossip/types.h"

#include <cstddef>
#include <memory>
#include <unordered_set>

namespace meshdeploy::gossip {

// Threading: not thread-safe. Every membership sharing a pool must run on the same thread
// (the simulator's, or the one node executor).
class meta_pool {
 public:
  meta_pool() = default;
  meta_pool(const meta_pool&) = delete;
  meta_pool& operator=(const meta_pool&) = delete;

  // The pooled copy equal to `m` (added if new). The returned pointer keeps it alive; the pool
  // forgets copies nobody else holds, at the latest when it has doubled since the last sweep.
  std::shared_ptr<const node_meta> intern(const node_meta& m);

  // Distinct metadata values currently held (including ones awaiting a sweep).
  [[nodiscard]] std::size_t size() const { return set_.size(); }

 private:
  // Transparent, so that looking up a node_meta allocates nothing.
  struct hash {
    using is_transparent = void;
    std::size_t operator()(const node_meta& m) const;
    std::size_t operator()(const std::shared_ptr<const node_meta>& m) const { return (*this)(*m); }
  };
  struct equal {
    using is_transparent = void;
    static const node_meta& get(const node_meta& m) { return m; }
    static const node_meta& get(const std::shared_ptr<const node_meta>& m) { return *m; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return get(a) == get(b);
    }
  };
  void sweep();

  std::unordered_set<std::shared_ptr<const node_meta>, hash, equal> set_;
  std::size_t sweep_at_ = 64;
};

}  // namespace meshdeploy::gossip

// The members one node knows, stored compactly: one fixed-size slot per member (metadata shared
// through a meta_pool, not copied) and an open-addressing index by name. At N = 10,000 every node
// holds 10,000 of these, and the simulator holds N of those tables, so the bytes per (observer,
// member) pair decide whether large clusters can be simulated (bench/RESULTS.md).
#pragma once

#include "gossip/config.h"
#include "gossip/types.h"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

namespace meshdeploy::gossip {

// Threading: a plain value owned by membership (node executor only).
class member_table {
 public:
  using slot_id = std::uint32_t;
  static constexpr slot_id none = static_cast<slot_id>(-1);

  // One member. membership owns the meaning of every field but `meta` (never null in a used
  // slot) and `gen` (bumped when the slot is freed, so a remembered (slot, gen) pair can tell
  // that its member was removed).
  struct entry {
    std::shared_ptr<const node_meta> meta;
    incarnation inc;
    time_point state_change{};
    std::uint64_t digest_part = 0;  // this member's term of the state digest
    slot_id live_pos = none;        // position in membership's live peer vector
    std::uint32_t gen = 0;
    member_state state = member_state::alive;
    bool in_gone = false;  // in membership's (time, slot) set of dead and left members
  };

  member_table() = default;
  member_table(const member_table&) = delete;
  member_table& operator=(const member_table&) = delete;

  // The slot of the member named `name`, or none.
  [[nodiscard]] slot_id find(std::string_view name) const;
  // Adds a member and returns its slot. REQUIRES: e.meta != nullptr and no member has its name.
  slot_id insert(entry e);
  // Removes the member in `id`; the slot may be reused by a later insert. REQUIRES: used(id).
  void erase(slot_id id);

  [[nodiscard]] entry& at(slot_id id) { return slots_[id]; }
  [[nodiscard]] const entry& at(slot_id id) const { return slots_[id]; }
  [[nodiscard]] bool used(slot_id id) const { return id < slots_.size() && slots_[id].meta; }
  [[nodiscard]] std::size_t size() const { return count_; }
  // One past the highest slot id ever used: iterate 0..slot_limit() and skip !used(id).
  [[nodiscard]] slot_id slot_limit() const { return static_cast<slot_id>(slots_.size()); }

 private:
  static std::uint64_t hash(std::string_view name);
  // Index position holding `name`'s slot, or the empty position where it would go.
  std::size_t position(std::string_view name) const;
  void grow();

  // A deque, so references to entries stay valid while members are added.
  std::deque<entry> slots_;
  std::vector<slot_id> free_;
  // Linear probing over a power-of-two table, at most 70% full; slot `none` marks an empty
  // position. Each position also keeps 32 bits of the name's hash, so a probe passes over other
  // names without touching their slots (at large N every such touch is a cache miss).
  struct position_entry {
    slot_id slot = none;
    std::uint32_t tag = 0;
  };
  std::vector<position_entry> index_;
  std::size_t count_ = 0;
};

}  // namespace meshdeploy::gossip

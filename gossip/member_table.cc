#include "gossip/member_table.h"

#include <cassert>
#include <utility>

namespace meshdeploy::gossip {

std::uint64_t member_table::hash(std::string_view name) {
  // FNV-1a 64, then a multiply-xorshift finish so the low bits (the table position) mix well.
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : name) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  h ^= h >> 32;
  h *= 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 29);
}

std::size_t member_table::position(std::string_view name) const {
  const std::size_t mask = index_.size() - 1;
  const std::uint64_t h = hash(name);
  const auto tag = static_cast<std::uint32_t>(h >> 32);
  std::size_t p = h & mask;
  // Terminates: the table is never full (grow keeps it at most 70% used).
  while (index_[p].slot != none &&
         (index_[p].tag != tag || slots_[index_[p].slot].meta->name != name)) {
    p = (p + 1) & mask;
  }
  return p;
}

member_table::slot_id member_table::find(std::string_view name) const {
  if (index_.empty()) return none;
  return index_[position(name)].slot;
}

void member_table::grow() {
  std::vector<position_entry> old = std::move(index_);
  index_.assign(old.empty() ? 16 : old.size() * 2, position_entry{});
  for (const auto& pe : old) {
    if (pe.slot != none) index_[position(slots_[pe.slot].meta->name)] = pe;
  }
}

member_table::slot_id member_table::insert(entry e) {
  assert(e.meta != nullptr);
  if ((count_ + 1) * 10 > index_.size() * 7) grow();
  const std::size_t p = position(e.meta->name);
  const auto tag = static_cast<std::uint32_t>(hash(e.meta->name) >> 32);
  assert(index_[p].slot == none);
  slot_id id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
    e.gen = slots_[id].gen;
    slots_[id] = std::move(e);
  } else {
    id = static_cast<slot_id>(slots_.size());
    assert(id != none);
    e.gen = 0;
    slots_.push_back(std::move(e));
  }
  index_[p] = position_entry{id, tag};
  ++count_;
  return id;
}

void member_table::erase(slot_id id) {
  assert(used(id));
  const std::size_t mask = index_.size() - 1;
  std::size_t hole = position(slots_[id].meta->name);
  assert(index_[hole].slot == id);
  // Backward-shift deletion keeps every probe sequence unbroken without tombstones: move later
  // entries of the cluster into the hole when their home position is not inside (hole, p].
  for (std::size_t p = (hole + 1) & mask; index_[p].slot != none; p = (p + 1) & mask) {
    const std::size_t home = hash(slots_[index_[p].slot].meta->name) & mask;
    const bool home_in_gap = hole <= p ? (hole < home && home <= p) : (hole < home || home <= p);
    if (home_in_gap) continue;
    index_[hole] = index_[p];
    hole = p;
  }
  index_[hole] = position_entry{};
  entry& e = slots_[id];
  const std::uint32_t next_gen = e.gen + 1;
  e = entry{};
  e.gen = next_gen;
  free_.push_back(id);
  --count_;
}

}  // namespace meshdeploy::gossip

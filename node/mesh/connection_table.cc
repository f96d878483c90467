#include "node/mesh/connection_table.h"

#include <algorithm>

namespace meshdeploy::mesh {

connection_table::connection_table(limits l) : limits_(l) {
  limits_.max_entries = std::max<std::size_t>(1, limits_.max_entries);
}

connection_table::added connection_table::add(const std::string& key, clock::time_point now) {
  added out;
  // The tables hold a few hundred entries at most, so linear scans are cheaper than keeping a
  // second index ordered by activity.
  while (entries_.size() >= limits_.max_entries) {
    const auto v = victim();
    if (!v) break;
    out.evicted.push_back(*v);
    remove(*v);
    ++evictions_;
  }
  out.entry = next_id_++;
  entries_.emplace(out.entry, entry{key, now, false});
  by_key_[key] = out.entry;
  return out;
}

std::optional<connection_table::id> connection_table::find(const std::string& key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

void connection_table::touch(id e, clock::time_point now) {
  if (auto it = entries_.find(e); it != entries_.end()) it->second.last = now;
}

void connection_table::set_protected(id e, bool p) {
  if (auto it = entries_.find(e); it != entries_.end()) it->second.is_protected = p;
}

void connection_table::remove(id e) {
  auto it = entries_.find(e);
  if (it == entries_.end()) return;
  if (auto k = by_key_.find(it->second.key); k != by_key_.end() && k->second == e) by_key_.erase(k);
  entries_.erase(it);
}

connection_table::clock::time_point connection_table::deadline(const entry& e) const {
  return e.last + (e.is_protected ? limits_.idle_timeout : limits_.unprotected_timeout);
}

std::optional<connection_table::id> connection_table::victim() const {
  std::optional<id> best;
  const entry* best_entry = nullptr;
  for (const auto& [i, e] : entries_) {
    // Unprotected before protected; within each, the least recently active (then the oldest).
    const bool better = best_entry == nullptr || (!e.is_protected && best_entry->is_protected) ||
                        (e.is_protected == best_entry->is_protected && e.last < best_entry->last);
    if (better) {
      best = i;
      best_entry = &e;
    }
  }
  return best;
}

std::vector<connection_table::id> connection_table::expire(clock::time_point now) {
  std::vector<id> out;
  for (const auto& [i, e] : entries_) {
    if (deadline(e) <= now) out.push_back(i);
  }
  for (id i : out) remove(i);
  return out;
}

std::optional<connection_table::clock::time_point> connection_table::next_expiry() const {
  std::optional<clock::time_point> out;
  for (const auto& [i, e] : entries_) {
    const auto d = deadline(e);
    if (!out || d < *out) out = d;
  }
  return out;
}

}  // namespace meshdeploy::mesh

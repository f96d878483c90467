#include "gossip/broadcast_queue.h"

#include "gossip/math.h"

#include <utility>

namespace meshdeploy::gossip {

broadcast_queue::broadcast_queue(unsigned retransmit_mult, std::size_t max_size)
    : mult_(retransmit_mult), max_size_(max_size) {}

void broadcast_queue::push(std::string key, std::vector<std::byte> message) {
  if (!key.empty()) {
    if (auto it = by_key_.find(key); it != by_key_.end()) {
      entries_.erase(it->second);
      by_key_.erase(it);
    }
  }
  const order_key k{0, -(next_id_++)};
  if (!key.empty()) by_key_.emplace(key, k);
  entries_.emplace(k, entry{std::move(key), std::move(message)});
  drop_excess();
}

std::vector<std::vector<std::byte>> broadcast_queue::take(std::size_t per_message_overhead,
                                                          std::size_t byte_budget,
                                                          std::size_t num_nodes) {
  std::vector<std::vector<std::byte>> out;
  const std::size_t limit = retransmit_limit(mult_, num_nodes);
  std::size_t used = 0;
  std::size_t skipped = 0;
  std::vector<decltype(entries_)::node_type> requeue;
  // One pass in priority order. A full queue holds up to max_size messages, and a packet takes
  // a few dozen: once the budget is nearly spent every further message would be skipped, so the
  // pass stops after max_skips misfits instead of walking the whole queue for each packet.
  for (auto it = entries_.begin(); it != entries_.end() && skipped < max_skips;) {
    const std::size_t cost = it->second.message.size() + per_message_overhead;
    if (used + cost > byte_budget) {
      ++it;
      ++skipped;
      continue;
    }
    used += cost;
    auto node = entries_.extract(it++);
    const auto [transmits, neg_id] = node.key();
    if (transmits + 1 < limit) {
      // Re-keyed in place (no reallocation) and put back after the pass, so this pass does not
      // see it again.
      node.key() = order_key{transmits + 1, neg_id};
      out.push_back(node.mapped().message);
      if (!node.mapped().key.empty()) by_key_[node.mapped().key] = node.key();
      requeue.push_back(std::move(node));
    } else {
      if (!node.mapped().key.empty()) by_key_.erase(node.mapped().key);
      out.push_back(std::move(node.mapped().message));
    }
  }
  for (auto& node : requeue) entries_.insert(std::move(node));
  return out;
}

void broadcast_queue::clear() {
  entries_.clear();
  by_key_.clear();
}

void broadcast_queue::drop_excess() {
  while (entries_.size() > max_size_) {
    // The last entry has the most transmits and, among those, is the oldest.
    auto last = std::prev(entries_.end());
    if (!last->second.key.empty()) by_key_.erase(last->second.key);
    entries_.erase(last);
  }
}

}  // namespace meshdeploy::gossip

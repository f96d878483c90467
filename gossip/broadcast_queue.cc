#include "gossip/broadcast_queue.h"

#include "gossip/math.h"

#include <utility>

namespace meshdeploy::gossip {

broadcast_queue::broadcast_queue(unsigned retransmit_mult, std::size_t max_size)
    : mult_(retransmit_mult), max_size_(max_size) {}

void broadcast_queue::push(std::string key, std::vector<std::byte> message) {
  if (!key.empty()) {
    if (auto it = by_key_.find(key); it != by_key_.end()) {
      entries_.erase(*it->second);
      by_key_.erase(it);
    }
  }
  const order_key k{0, -(next_id_++)};
  auto [it, inserted] = entries_.emplace(
      k, entry{key, std::make_shared<const std::vector<std::byte>>(std::move(message))});
  if (!key.empty()) by_key_.emplace(std::move(key), &it->first);
  drop_excess();
}

std::vector<broadcast_queue::shared_bytes> broadcast_queue::take(std::size_t per_message_overhead,
                                                                 std::size_t byte_budget,
                                                                 std::size_t num_nodes,
                                                                 std::size_t max_messages) {
  std::vector<shared_bytes> out;
  const std::size_t limit = retransmit_limit(mult_, num_nodes);
  std::size_t used = 0;
  std::size_t skipped = 0;
  std::vector<entry_map::node_type> requeue;
  // One pass in priority order. A full queue holds up to max_size messages, and a packet takes
  // a few dozen: once the budget is nearly spent every further message would be skipped, so the
  // pass stops after max_skips misfits instead of walking the whole queue for each packet.
  for (auto it = entries_.begin();
       it != entries_.end() && skipped < max_skips && out.size() < max_messages;) {
    const std::size_t cost = it->second.message->size() + per_message_overhead;
    if (used + cost > byte_budget) {
      ++it;
      ++skipped;
      continue;
    }
    used += cost;
    auto node = entries_.extract(it++);
    out.push_back(node.mapped().message);
    const auto [transmits, neg_id] = node.key();
    if (transmits + 1 < limit) {
      // Re-keyed in place and put back after the pass, so this pass does not see it again.
      node.key() = order_key{transmits + 1, neg_id};
      requeue.push_back(std::move(node));
    } else if (!node.mapped().key.empty()) {
      by_key_.erase(node.mapped().key);
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

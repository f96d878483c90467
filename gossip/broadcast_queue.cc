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
  std::vector<std::pair<order_key, entry>> requeue;
  // One pass in priority order; the loop is bounded by the queue size.
  for (auto it = entries_.begin(); it != entries_.end();) {
    const std::size_t cost = it->second.message.size() + per_message_overhead;
    if (used + cost > byte_budget) {
      ++it;
      continue;
    }
    used += cost;
    auto [transmits, neg_id] = it->first;
    entry e = std::move(it->second);
    if (!e.key.empty()) by_key_.erase(e.key);
    it = entries_.erase(it);
    ++transmits;
    if (transmits < limit) {
      out.push_back(e.message);
      requeue.emplace_back(order_key{transmits, neg_id}, std::move(e));
    } else {
      out.push_back(std::move(e.message));
    }
  }
  for (auto& [k, e] : requeue) {
    if (!e.key.empty()) by_key_.emplace(e.key, k);
    entries_.emplace(k, std::move(e));
  }
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

// A transmit-limited broadcast queue (memberlist's TransmitLimitedQueue
// semantics). Each queued message is an already encoded gossip message; it is
// handed out for piggybacking until it has been sent retransmit_limit(N)
// times, fewest-transmitted (then newest) first, and a newer message about
// the same subject (same non-empty key) replaces an older one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace meshdeploy::gossip {

// Threading: a plain value owned by membership (node executor only).
class broadcast_queue {
 public:
  // retransmit_mult: see config::retransmit_mult. max_size bounds memory: when exceeded, the
  // entries that were transmitted most (then the oldest) are dropped.
  broadcast_queue(unsigned retransmit_mult, std::size_t max_size);

  broadcast_queue(const broadcast_queue&) = delete;
  broadcast_queue& operator=(const broadcast_queue&) = delete;

  // Queues `message` (encoded bytes). A non-empty `key` names its subject (e.g. a member's
  // name): any queued message with the same key is dropped. An empty key never invalidates.
  void push(std::string key, std::vector<std::byte> message);

  using shared_bytes = std::shared_ptr<const std::vector<std::byte>>;

  // Takes up to max_messages messages to piggyback: fewest transmits first, newest first among
  // equals, skipping any that do not fit, so that sum(size + per_message_overhead) <=
  // byte_budget; after max_skips messages that did not fit it stops looking (the budget is then
  // nearly spent, and walking a full queue for every packet made large joins quadratic). Each
  // returned message counts one transmit; it leaves the queue once it reaches
  // retransmit_limit(mult, num_nodes). The returned bytes are shared, immutable and stay valid
  // after they leave the queue.
  std::vector<shared_bytes> take(std::size_t per_message_overhead, std::size_t byte_budget,
                                 std::size_t num_nodes, std::size_t max_messages);

  static constexpr std::size_t max_skips = 16;

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] bool empty() const { return entries_.empty(); }

  // Drops everything (used after a graceful leave has been sent).
  void clear();

 private:
  struct entry {
    std::string key;
    shared_bytes message;
  };
  // Order: transmits ascending, then id descending (newer first).
  using order_key = std::tuple<std::size_t, std::int64_t>;  // (transmits, -id)
  using entry_map = std::map<order_key, entry>;

  void drop_excess();

  unsigned mult_;
  std::size_t max_size_;
  std::int64_t next_id_ = 0;
  entry_map entries_;
  // Keyed entries by key: a pointer to the entry's order key inside its map node. take()
  // re-keys entries by extracting and re-inserting their nodes, which moves no memory, so the
  // pointer stays valid and needs no update until the entry leaves the queue.
  std::unordered_map<std::string, const order_key*> by_key_;
};

}  // namespace meshdeploy::gossip

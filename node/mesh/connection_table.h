// Bookkeeping for a bounded set of long-lived stream connections (the gossip driver's outgoing
// streams to peers, and its incoming stream sessions): which connection serves a key, which ones
// have been idle too long, and which one to close when a new one would exceed the limit.
// Sans-IO: no sockets, no clock of its own (callers pass `now`), so the policy is unit-tested
// on manual time (tests/unit/node/mesh/connection_table_test.cc); gossip_driver.cc owns the
// sockets and closes what this table says. docs/gossip.md "Running it" describes the policy.
//
// Policy:
// - At most `max_entries` entries. Adding one more first evicts a victim: the least recently
//   active entry that is not protected, else the least recently active protected one. The
//   driver protects an outgoing stream while it has frames queued, and an incoming session once
//   its first frame authenticated, so an unauthenticated flood evicts itself before it evicts
//   real peers.
// - An entry idle (no touch) for `idle_timeout` expires; one not yet protected expires after
//   `unprotected_timeout` instead (the incoming side's deadline for a first frame).
// - Keys are unique: at most one entry per key (the outgoing side keys by peer address; the
//   incoming side gives every session its own key).
//
// Threading: none; the node's io thread owns it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace meshdeploy::mesh {

class connection_table {
 public:
  using clock = std::chrono::steady_clock;
  using id = std::uint64_t;

  struct limits {
    std::size_t max_entries = 64;  // REQUIRES: >= 1
    clock::duration idle_timeout = std::chrono::seconds(30);
    clock::duration unprotected_timeout = std::chrono::seconds(30);
  };

  explicit connection_table(limits l);
  connection_table(const connection_table&) = delete;
  connection_table& operator=(const connection_table&) = delete;

  struct added {
    id entry = 0;
    std::vector<id> evicted;  // to close now; already removed from the table
  };
  // Adds an entry for `key`, active at `now`, unprotected. REQUIRES: no entry has `key`.
  added add(const std::string& key, clock::time_point now);

  // The entry holding `key`, if any.
  [[nodiscard]] std::optional<id> find(const std::string& key) const;
  // Marks activity on `e` at `now` (a frame sent or received). Unknown ids are ignored.
  void touch(id e, clock::time_point now);
  // Protects or unprotects `e` (see Policy). Unknown ids are ignored.
  void set_protected(id e, bool p);
  // Forgets `e` (its connection closed). Unknown ids are ignored.
  void remove(id e);

  // Removes and returns the entries whose timeout has passed at `now`.
  std::vector<id> expire(clock::time_point now);
  // When the next entry expires; nullopt when the table is empty.
  [[nodiscard]] std::optional<clock::time_point> next_expiry() const;

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] std::uint64_t evictions() const { return evictions_; }
  [[nodiscard]] const limits& config() const { return limits_; }

 private:
  struct entry {
    std::string key;
    clock::time_point last{};
    bool is_protected = false;
  };
  [[nodiscard]] clock::time_point deadline(const entry& e) const;
  [[nodiscard]] std::optional<id> victim() const;

  limits limits_;
  id next_id_ = 1;
  std::map<id, entry> entries_;
  std::map<std::string, id> by_key_;
  std::uint64_t evictions_ = 0;
};

}  // namespace meshdeploy::mesh

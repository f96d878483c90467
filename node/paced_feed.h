// Paces the delivery of stored records to the deployment logic (mesh_deployer::on_record) so
// that the status recomputations they trigger cannot take the whole io thread. Every stored
// record makes the deployer recompute the deployment's status, a cost that grows with the
// number of hosts; on a large mesh the records of one wave arrive faster than they can be
// handled one by one, and the io thread (gossip, API, hand-offs) starves (bench/RESULTS.md).
//
// Policy:
// - Urgent records (everything that can change what a host may do: intents, approvals,
//   resolutions, failures, stops) are delivered at once, with everything held before them,
//   unless the deployer is resting: after work that took d it rests d * (1 - share) / share (at
//   most max_rest), and urgent records arriving meanwhile are delivered together when it ends.
// - Lazy records (a host's progress while it is inside its window: it frees no token and
//   changes no decision, only the displayed status) are held up to lazy_delay, or until an
//   urgent record takes them along.
// So a quiet node delivers an urgent record with no delay, a busy one within one rest, and one
// recomputation covers a whole batch.
//
// Sans-IO: the caller passes the time, arms one timer at the time offer() returns and calls
// take_due() when it fires (node.cc). Threading: none; the node's io thread owns it.
#pragma once

#include "node/records/record.h"

#include <chrono>
#include <optional>
#include <vector>

namespace meshdeploy::node {

class paced_feed {
 public:
  using clock = std::chrono::steady_clock;

  // REQUIRES: 0 < share <= 1 (clamped); max_rest, lazy_delay >= 0.
  paced_feed(double share, clock::duration max_rest, clock::duration lazy_delay);

  struct action {
    std::vector<records::record> deliver;  // now, in this order
    // (Re)arm the timer for this time (replacing an armed one); nullopt: leave it as it is.
    std::optional<clock::time_point> arm;
    bool cancel = false;  // nothing is held any more: the armed timer may be cancelled
  };
  // A record was stored at `now`.
  action offer(records::record r, bool urgent, clock::time_point now);
  // The timer fired: everything held, in arrival order.
  std::vector<records::record> take_due();
  // The deployer worked from `start` to `end` (a recomputation, or the delivery of a batch).
  void worked(clock::time_point start, clock::time_point end);

  [[nodiscard]] clock::time_point rest_until() const { return rest_until_; }
  [[nodiscard]] std::size_t held() const { return held_.size(); }

 private:
  double share_;
  clock::duration max_rest_;
  clock::duration lazy_delay_;
  clock::time_point rest_until_{};
  std::vector<records::record> held_;
  std::optional<clock::time_point> due_;  // when the armed timer fires
};

// Whether a stored record is urgent for paced_feed: all but a host's progress record in phase
// "entered" (inside its window). Undecodable payloads count as urgent.
bool urgent_for_deployer(const records::record& r);

}  // namespace meshdeploy::node

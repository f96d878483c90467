// Admission: at most one active deployment per group (docs/rollout.md "Admission").
//
// The group's admitted deployments form a chain. A committee host approves a child D for the
// parent P = the chain's newest deployment ("" for the first) only once P is over in its view,
// and at most one child per parent (host_driver keeps that in its journal); it picks the
// earliest (created, id) open intent it knows. D joins the chain when a majority of D's
// admission committee approved (P, D). When no competitor can reach a majority any more (an
// even split: every committee member of every competitor voted, and every intent voted for is
// known here), the most votes win, then the earliest (created, id).
//
// Losers: once W is admitted, every open intent OLDER than W (by created, id) was overtaken and
// ends Failed naming W; newer ones are Queued and compete for the next parent. (Deviation: a
// rule "whoever got votes for the parent W won loses" is not monotone: one delayed vote, e.g.
// from an isolated submitter, can arrive after other hosts admitted that intent under W and
// flip a Failed deployment to running. Found by the simulator, seed 47.) Two submissions at
// the same moment: hosts vote for the older one, so it normally wins and the newer one queues
// behind it; if the older one's intent was held up (its submitter cut off) the newer one wins
// and the older one fails, naming it. Hosts never approve an intent lost in their view, and do
// not vote while their view has votes naming a parent they have not seen.
//
// The committee is the whole target list for groups of up to admission_committee_size hosts,
// else the admission_committee_size targets with the smallest FNV-1a(app/group/host): it
// depends only on the target set, so two intents with the same targets have the same
// committee and their majorities intersect. (Deviation from a majority of all targets: that
// costs O(N) approval records per deployment on every node, 10^8 at N = 10,000.)
//
// Pure functions of a record_set; no clocks, no I/O.
#pragma once

#include "node/deploy/rollout/record_set.h"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace meshdeploy::deploy::rollout {

// admission_committee() and its size are in record_set.h (cached in intent_entry).

struct admission_state {
  std::vector<std::string> chain;              // admitted deployments, oldest first
  std::map<std::string, std::string> lost_to;  // deployment -> winner of the parent it lost
  // The parent of each admitted deployment ("" for the first).
  std::map<std::string, std::string> parent_of;

  bool admitted(const std::string& id) const { return parent_of.count(id) != 0; }
  // The newest admitted deployment, "" when none.
  std::string latest() const { return chain.empty() ? std::string() : chain.back(); }
};

// Computes the chain and the losers from the set's intents and approvals. Intents with no
// targets never compete (they are Failed NO_INSTANCES by the view).
admission_state admit(const record_set& rs);

// The approval `host` should sign now, if any: for parent = s.latest(), the earliest
// (created, id) intent that is neither admitted nor lost and whose committee holds `host`.
// REQUIRES: the caller checked that the parent is over in its view and that `host` signed no
// approval for that parent yet (host_driver does both).
std::optional<records::approval_payload> next_approval(const record_set& rs,
                                                       const admission_state& s,
                                                       const std::string& host);

}  // namespace meshdeploy::deploy::rollout

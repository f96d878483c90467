#include "node/deploy/rollout/admission.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace meshdeploy::deploy::rollout {

namespace {

bool in(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

admission_state admit(const record_set& rs) {
  admission_state out;
  const auto ordered = rs.intents_in_order();
  std::set<std::string> decided;
  std::string parent;
  // Each round admits one deployment, so the loop is bounded by the number of intents.
  for (std::size_t round = 0; round <= ordered.size(); ++round) {
    auto votes_it = rs.approvals().find(parent);
    if (votes_it == rs.approvals().end()) break;
    const auto& votes = votes_it->second;  // host -> child
    struct candidate {
      const intent_entry* e;
      const std::vector<std::string>* committee;
      std::size_t votes = 0;
    };
    std::vector<candidate> competing;  // in (created, id) order
    for (const intent_entry* e : ordered) {
      const std::string& id = e->intent.deployment_id;
      if (e->intent.targets.empty() || decided.count(id) != 0) continue;
      std::size_t n = 0;
      for (const auto& [host, child] : votes) {
        if (child == id && in(e->committee, host)) ++n;
      }
      if (n > 0) competing.push_back({e, &e->committee, n});
    }
    if (competing.empty()) break;
    const candidate* winner = nullptr;
    for (const auto& c : competing) {
      // With equal committees at most one can have a majority; with different committees
      // (intents planned over different membership views) the earliest one wins.
      if (2 * c.votes > c.committee->size()) {
        winner = &c;
        break;
      }
    }
    if (winner == nullptr) {
      // A vote for an intent this node has not seen yet is a competitor it cannot weigh.
      for (const auto& [host, child] : votes) {
        if (rs.intent(child) == nullptr) return out;
      }
      for (const auto& c : competing) {
        for (const auto& h : *c.committee) {
          if (votes.count(h) == 0) return out;  // someone may still vote: undecided
        }
      }
      winner = &*std::min_element(competing.begin(), competing.end(),
                                  [](const candidate& a, const candidate& b) {
                                    return a.votes > b.votes;  // stable: earliest among equals
                                  });
    }
    const std::string won = winner->e->intent.deployment_id;
    out.chain.push_back(won);
    out.parent_of[won] = parent;
    decided.insert(won);
    // Every open intent older than the winner was overtaken: it loses, naming the winner. That
    // depends only on the chain and the intents' own (created, id), never on which votes
    // happen to have arrived, so every view that admits the winner agrees, and no host votes
    // for a loser afterwards (see admission.h).
    const auto key = std::tie(winner->e->created, won);
    for (const intent_entry* e : ordered) {
      const std::string& id = e->intent.deployment_id;
      if (decided.count(id) != 0 || e->intent.targets.empty()) continue;
      if (std::tie(e->created, id) < key) {
        out.lost_to[id] = won;
        decided.insert(id);
      }
    }
    parent = won;
  }
  return out;
}

std::optional<records::approval_payload> next_approval(const record_set& rs,
                                                       const admission_state& s,
                                                       const std::string& host) {
  // A view with votes naming a parent it has not seen is missing part of the chain: voting
  // now could name a stale parent (a stray vote), so wait for the rest.
  for (const auto& [parent, votes] : rs.approvals()) {
    if (!parent.empty() && rs.intent(parent) == nullptr) return std::nullopt;
  }
  for (const intent_entry* e : rs.intents_in_order()) {
    const auto& in_ = e->intent;
    if (in_.targets.empty() || s.admitted(in_.deployment_id) ||
        s.lost_to.count(in_.deployment_id) != 0) {
      continue;
    }
    if (!in(e->committee, host)) continue;
    return records::approval_payload{rs.app(), rs.group(), s.latest(), in_.deployment_id, host};
  }
  return std::nullopt;
}

}  // namespace meshdeploy::deploy::rollout

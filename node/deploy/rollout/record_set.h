// What one node knows about one deployment group's deployments: the intents, approvals,
// progress (newest per host and deployment), stops and excludes it has seen. Part of the pure
// rollout core (docs/rollout.md): no clocks, no I/O, no signatures; the caller adds payloads it
// has already verified.
//
// Adding is idempotent and commutative: the same records added in any order, any number of
// times, give equal sets (operator==, digest()). Where two records compete for one slot the
// winner is a fixed total order, never arrival order:
//   - intent (immutable, key deployment id): the smaller (created, fields...) is kept;
//   - approval (immutable, one per (parent, host)): the smaller child is kept and the
//     conflict is counted (a correct host never signs two; see admission.h);
//   - progress (newest per (deployment, host)): the larger version wins, ties by content;
//   - stop (key deployment id): the smaller reason is kept; exclude: a set.
//
// Threading: a plain value; not synchronized.
#pragma once

#include "node/deploy/status.h"
#include "node/records/payloads.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace meshdeploy::deploy::rollout {

// The admission committee of an intent (admission.h): its voters are the targets plus the
// intent's electorate (hosts of the previous deployment the plan left out); all of them for
// groups of up to admission_committee_size voters, else the admission_committee_size voters
// with the smallest FNV-1a(app/group/host), in that order. It depends only on the voter set.
inline constexpr std::size_t admission_committee_size = 31;
std::vector<std::string> admission_committee(const records::intent_payload& intent);

// An intent with what every reader derives from it, computed once. Immutable once made, so
// nodes (and the simulator's hosts) may share one.
struct intent_entry {
  records::intent_payload intent;
  unix_ms created = 0;                 // the intent record's signing time (ordering among intents)
  std::vector<std::string> committee;  // admission_committee(intent)
  std::unordered_map<std::string, std::uint32_t> position;  // host -> index in targets

  // Position of `host` in the targets, or -1.
  std::int64_t position_of(const std::string& host) const {
    auto it = position.find(host);
    return it == position.end() ? -1 : static_cast<std::int64_t>(it->second);
  }
};

std::shared_ptr<const intent_entry> make_intent_entry(records::intent_payload intent,
                                                      unix_ms created);

struct progress_entry {
  records::progress_payload progress;
  // The record's version: larger is newer. host_driver::progress_version() numbers a host's
  // progress so that a replay after a crash or a wiped data dir yields the same versions.
  std::uint64_t version = 0;
};

class record_set {
 public:
  // Records of other groups are refused by the add_* calls (they return false).
  record_set(std::string app, std::string group);

  const std::string& app() const { return app_; }
  const std::string& group() const { return group_; }

  // Each returns true when the set changed. `created` is the intent record's signing time;
  // `version` the progress record's version.
  bool add_intent(const records::intent_payload& intent, unix_ms created);
  // The same, sharing an entry made by make_intent_entry(). REQUIRES: e != nullptr.
  bool add_intent(std::shared_ptr<const intent_entry> e);
  bool add_approval(const records::approval_payload& approval);
  // Progress carries no group: it is accepted for any deployment id (its intent may arrive
  // later); views only look at deployments whose intent is known.
  bool add_progress(const records::progress_payload& progress, std::uint64_t version);
  bool add_stop(const records::stop_payload& stop);
  bool add_exclude(const records::exclude_payload& exclude);

  // Intents by deployment id.
  const std::map<std::string, std::shared_ptr<const intent_entry>>& intents() const {
    return intents_;
  }
  const intent_entry* intent(const std::string& deployment_id) const;
  // Intents ordered by (created, id): the order in which a host considers them.
  std::vector<const intent_entry*> intents_in_order() const;

  // parent -> host -> child it approved for that parent.
  const std::map<std::string, std::map<std::string, std::string>>& approvals() const {
    return approvals_;
  }
  // Hosts seen to approve two different children for one parent (a bug or a wiped journal).
  const std::set<std::pair<std::string, std::string>>& approval_conflicts() const {
    return conflicts_;
  }

  // Newest progress of `host` in `deployment_id`, or nullptr.
  const progress_entry* progress(const std::string& deployment_id, const std::string& host) const;
  // All progress of one deployment, by host.
  const std::map<std::string, progress_entry>* progress_of(const std::string& deployment_id) const;

  const records::stop_payload* stop(const std::string& deployment_id) const;
  bool excluded(const std::string& deployment_id, const std::string& host) const;
  // Hosts excluded from `deployment_id`.
  std::vector<std::string> excluded_hosts(const std::string& deployment_id) const;

  // Number of records held (each slot counts once).
  std::size_t size() const;

  // An order-independent fingerprint of the content (equal sets, equal digests).
  std::uint64_t digest() const;

  friend bool operator==(const record_set& a, const record_set& b);

 private:
  std::string app_;
  std::string group_;
  std::map<std::string, std::shared_ptr<const intent_entry>> intents_;
  std::map<std::string, std::map<std::string, std::string>> approvals_;
  std::set<std::pair<std::string, std::string>> conflicts_;  // (parent, host)
  std::map<std::string, std::map<std::string, progress_entry>> progress_;
  std::map<std::string, records::stop_payload> stops_;
  std::set<std::pair<std::string, std::string>> excludes_;  // (deployment, host)
};

// The phases of progress_payload::phase.
inline constexpr const char* phase_entered = "entered";
inline constexpr const char* phase_resolved = "resolved";
inline constexpr const char* phase_failed = "failed";
inline constexpr const char* phase_skipped = "skipped";

// True for resolved, failed, skipped: a host publishes at most one of these per deployment and
// nothing after it.
bool is_final_phase(const std::string& phase);

}  // namespace meshdeploy::deploy::rollout

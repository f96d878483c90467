// A deployment across the mesh as a pure function of its signed records
// (DESIGN.md §4, §5; docs/rollout.md): the rollout gate a target host obeys
// before entering the update window, and the status document every node
// computes from the same records. No clocks, no I/O.
#pragma once

#include "node/deploy/deployment_config.h"
#include "node/deploy/status.h"
#include "node/records/payloads.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::deploy {

// What one node knows of one deployment.
struct deployment_records {
  records::intent_payload intent;
  unix_ms created = 0;                                        // the intent's signing time
  std::map<std::string, records::progress_payload> progress;  // newest per host
  std::optional<records::stop_payload> stop;
  unix_ms stopped_at = 0;
  std::set<std::string> excluded;  // hosts an operator fenced off
  // Admission (see admit()): whether the deployment is in its group's chain, or which
  // deployment won the parent it competed for.
  bool admitted = false;
  std::string lost_to;
};

// Admission: at most one deployment per group runs at a time. A target host approves one
// child per parent, the parent being the newest admitted deployment of the group, once that
// is over. A deployment is admitted when a majority of its targets approved it for the same
// parent; when every target of every competitor has voted and nobody has a majority, the most
// votes win, then the earliest (create time, id). Competitors that got votes for a parent
// someone else won lose (Failed, naming the winner); later intents queue for the next parent.
struct group_intent {
  std::string id;
  std::vector<std::string> targets;
  unix_ms created = 0;
};
struct admission {
  std::vector<std::string> chain;              // admitted deployments, oldest first
  std::map<std::string, std::string> lost_to;  // deployment -> the winner of its parent
};
admission admit(const std::vector<group_intent>& intents,
                const std::vector<records::approval_payload>& approvals);

// Prefix of the event message a host publishes when a restart cut its run short; the status
// then carries errorInformation DEPLOYMENT_INTERRUPTED.
inline constexpr std::string_view interrupted_prefix = "DEPLOYMENT_INTERRUPTED: ";

// A host's phase in a deployment (progress_payload::phase), "" when it published none.
std::string phase_of(const deployment_records& d, const std::string& host);

enum class gate_decision {
  wait,   // not yet: too many earlier positions are unresolved
  enter,  // the host may enter the update window now
  skip,   // never: the deployment was stopped or already ended (the host publishes skipped)
};

// The rollout gate for `host` (a target). The host at position p enters only when at most
// K-1 earlier positions lack a resolution (resolved, or excluded by an operator), no stop was
// seen and the deployment has not already failed. A failed or silent host keeps its token.
// REQUIRES: host is in d.intent.targets.
gate_decision gate(const deployment_records& d, const deployment_config& config,
                   const std::string& host);

// The status document (DESIGN.md §10) of the deployment. Hosts: every target with its events
// (Pending until it reports). Status: Failed as soon as CodeDeploy's minimum-healthy rules
// say so or there are no targets (NO_INSTANCES); Succeeded when every target resolved; Stopped
// once a stop is seen and no host is still inside the window; else InProgress (Created before
// any host reported). `group_id` and `bundle_format` are copied in.
deployment_record view(const deployment_records& d, const deployment_config& config,
                       const std::string& group_id, const std::string& bundle_format);

}  // namespace meshdeploy::deploy

// The status of a deployment as a pure function of a record_set (docs/rollout.md "Status").
//
// Per target host, its outcome: excluded (an operator fenced it; this wins over anything the
// host wrote), else its newest progress phase. A host writes at most one final phase
// (resolved, failed, skipped) per deployment and nothing after it, so outcomes only move
// forward. The deployment's status is then, in this order:
//   1. no targets: Failed (NO_INSTANCES);
//   2. lost admission: Failed (DEPLOYMENT_GROUP_BUSY, naming the winner);
//   3. not admitted: Queued (an earlier deployment of the group is not over) or Created;
//   4. the minimum can no longer be met: Failed (HEALTH_CONSTRAINTS, or DEPLOYMENT_INTERRUPTED
//      when a failed host was cut short by a crash). That is: fewer than
//      successes_needed() hosts are left that neither failed nor were excluded, or, for
//      OneAtATime, more than failure_budget hosts other than the last one failed (or were
//      excluded);
//   5. a host skipped because the deployment failed in its view (HEALTH_CONSTRAINTS) or its
//      progress deadline passed (DEPLOYMENT_TIMED_OUT): Failed with that reason;
//   6. every target settled (final phase or excluded): Stopped if any host skipped, else
//      Succeeded when at least successes_needed() hosts resolved, else Failed;
//   7. else InProgress.
// Each rule reads only facts that never change once true (a failure count that only grows,
// final phases), so a terminal status never changes as more records arrive. The one
// exception is an exclude of a host that already resolved (the exclude wins); operators
// exclude hosts that are down, and `meshdeploy exclude` refuses a host it sees resolved.
// An excluded host is Unknown in the host list and counts as failed (CodeDeploy counts an
// unreachable instance as failed): its own failed record and the operator's exclude then give
// the same status in either order. The exclude frees its token (gate.h), so configs that
// tolerate failures go on without it.
#pragma once

#include "node/deploy/deployment_config.h"
#include "node/deploy/rollout/admission.h"
#include "node/deploy/rollout/record_set.h"
#include "node/deploy/status.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace meshdeploy::deploy::rollout {

// Reasons a host writes into a skipped progress record: the error_code of its first Skipped
// event (host_driver does this); the message names the cause.
inline constexpr const char* skip_stopped = "DEPLOYMENT_STOPPED";
inline constexpr const char* skip_health = "HEALTH_CONSTRAINTS";
inline constexpr const char* skip_timed_out = "DEPLOYMENT_TIMED_OUT";
inline constexpr const char* skip_excluded = "EXCLUDED";

// Prefix of the event message a host publishes when a restart cut its run short; a deployment
// failed by such a host carries errorInformation DEPLOYMENT_INTERRUPTED.
inline constexpr std::string_view interrupted_prefix = "DEPLOYMENT_INTERRUPTED: ";

enum class host_outcome { pending, inside, resolved, failed, skipped, excluded };

struct host_fact {
  host_outcome outcome = host_outcome::pending;
  bool ran = false;         // it entered the window at some point (entered, or events ran)
  std::string skip_reason;  // for skipped: the code above ("" if none given)
  std::string skip_message;
};

// The host's outcome in deployment `id`.
host_fact fact_of(const record_set& rs, const std::string& id, const std::string& host);

bool settled(const host_fact& f);

// The failure rules of an intent, derived from its K and config name: H = N - K (CodeDeploy's
// minimum healthy), OneAtATime special-cased. Equal to deploy::decide()'s.
deployment_config config_of(const records::intent_payload& intent);

// Hosts that must resolve for the deployment to succeed: OneAtATime 1; else
// max(1, H - failure_budget) with H = N - K (CodeDeploy's minimum healthy hosts).
std::uint32_t successes_needed(const records::intent_payload& intent);

struct outcome {
  deployment_status status = deployment_status::created;
  std::optional<error_information> error;
};

// The status of deployment `id` by the rules above.
// REQUIRES: rs.intent(id) != nullptr; s == admit(rs).
outcome judge(const record_set& rs, const admission_state& s, const std::string& id);

// Intents a node signs on the group's behalf (an automatic rollback, a host's catch-up) carry
// creator "host:NAME" (the verifier holds them to node_intent rules, node/security/verifier.h).
inline constexpr std::string_view node_creator_prefix = "host:";

// A host's catch-up of itself: written by a node (creator "host:NAME"), not a rollback.
inline bool is_catch_up_intent(const records::intent_payload& in) {
  return in.creator.rfind(node_creator_prefix, 0) == 0 && in.rollback_of.empty();
}

// CodeDeploy's deploymentCreator for an intent: "user", "codeDeployRollback" (node-written
// rollback) or "autoscaling" (node-written catch-up).
std::string deployment_creator_of(const records::intent_payload& intent);

struct view_context {
  std::string group_id;
  std::string bundle_format;
};

// The status document (DESIGN.md §10) of deployment `id`: judge() plus one row per target
// (Pending with every lifecycle event until it reports; excluded hosts are Unknown), the
// rollback links (rollback_of, rolled_back_by: the first intent by id that rolls it back) and
// deployment_creator.
// complete_time is the newest event time seen when terminal. REQUIRES as judge().
deployment_record view(const record_set& rs, const admission_state& s, const std::string& id,
                       const view_context& ctx);

}  // namespace meshdeploy::deploy::rollout

// host_driver: what one target host does about its group's deployments, sans-IO
// (docs/rollout.md "The host driver").
//
// Inputs: records seen (add_*), local execution events (on_event, on_execution_finished), the
// journal it persisted before a crash (constructor + on_recovered), time (on_tick, only for the
// progress deadline) and what the membership layer calls dead (set_dead; ignored by correct
// code). Output: actions, which the node performs IN ORDER; a persist_journal action must be
// durable (synced when `sync`) before the next action starts. The driver adds the records it
// publishes to its own record_set itself.
//
// Rules: it approves at most one child per parent, and only once the parent is over in its
// view and it runs nothing (the approval is persisted before it is published). It enters a
// deployment at most once: "entered" is persisted (synced) before the entered record is
// published and before execution starts. It resolves only after ValidateService passed. After
// a stop (or its own exclusion) it starts no new script, and hosts that did not start publish
// skipped. A crash inside the window ends as failed (DEPLOYMENT_INTERRUPTED), never rerun.
//
// Threading: a plain object; call it from one executor only.
#pragma once

#include "node/deploy/rollout/admission.h"
#include "node/deploy/rollout/gate.h"
#include "node/deploy/rollout/record_set.h"
#include "node/deploy/rollout/test_mutations.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace meshdeploy::deploy::rollout {

// The host state the node must store durably (next to the agent's deployment root, so that it
// survives a wiped data dir; see docs/rollout.md).
struct host_journal {
  std::map<std::string, std::string> approved;  // parent -> the child this host approved
  // The intents it approved, as signed by the operator (created = signing time): if every other
  // copy is lost (a submitter wiped right after submitting), a vote for an intent nobody holds
  // would block the group's admission, so the voter can always publish it again.
  std::map<std::string, std::pair<records::intent_payload, unix_ms>> approved_intents;
  std::set<std::string> entered;  // deployments this host entered
  // deployment -> the final progress record it published (resolved, failed or skipped)
  std::map<std::string, records::progress_payload> finished;
};

enum class action_kind {
  prefetch,          // fetch the bundle of `revision` now (the host may run it later)
  persist_journal,   // store `journal`; durable (synced if `sync`) before the next action
  publish_approval,  // sign and publish `approval`
  publish_progress,  // sign and publish `progress` as version `version`
  start_execution,   // run the lifecycle of `deployment` (`revision`) with the agent
  stop_execution,    // let the running script finish and start no other
  republish_intent,  // publish again the stored operator-signed intent `intent` (created `at`)
};

struct action {
  action_kind kind = action_kind::prefetch;
  std::string deployment;
  std::string revision;
  host_journal journal;
  bool sync = true;
  records::approval_payload approval;
  records::progress_payload progress;
  std::uint64_t version = 0;
  records::intent_payload intent;
  unix_ms at = 0;
};

// What the agent knows of a run a crash cut short (agent::executor::recover): the event that
// was running ("" if between events), its script, and the honest account of what happened.
struct interruption {
  std::string event;
  std::string script;
  std::string message;
};

// How an execution ended (on_execution_finished).
enum class execution_end { completed, failed, stopped };

struct driver_options {
  // A host waiting at the gate that sees no progress in the deployment for this long publishes
  // skipped (DEPLOYMENT_TIMED_OUT), which fails the deployment; it frees no token. 0: never.
  std::int64_t progress_deadline_ms = 0;
  test_mutations mutations;  // TEST ONLY
};

// Version of the final progress record of a host (larger than any per-event one).
inline constexpr std::uint64_t final_progress_version = 1'000'000;

class host_driver {
 public:
  // `journal` is what the host persisted before (empty for a new host).
  host_driver(std::string host, std::string app, std::string group, host_journal journal,
              driver_options options = {});
  host_driver(const host_driver&) = delete;
  host_driver& operator=(const host_driver&) = delete;

  const std::string& host() const { return host_; }
  const record_set& records() const { return rs_; }
  const host_journal& journal() const { return journal_; }
  const admission_state& admission() const { return adm_; }
  // The deployment being executed, "" when none.
  const std::string& executing() const { return executing_; }

  // Records seen (verified by the caller). Each returns true when the set changed; call step()
  // afterwards (once for a batch).
  bool add_intent(const records::intent_payload& p, unix_ms created);
  bool add_intent(std::shared_ptr<const intent_entry> e);  // shared with other readers
  bool add_approval(const records::approval_payload& p);
  bool add_progress(const records::progress_payload& p, std::uint64_t version);
  bool add_stop(const records::stop_payload& p);
  bool add_exclude(const records::exclude_payload& p);

  // Evaluates admission, gates, stops and deadlines; returns what to do.
  std::vector<action> step();

  // After a restart, before anything else: a deployment entered but not finished was cut
  // short (failed, DEPLOYMENT_INTERRUPTED); finals, approvals and approved intents in the
  // journal that the record set lacks (wiped data dir) are published again. Then step().
  // `why` (by deployment id) names the event and script the crash interrupted, when known.
  std::vector<action> on_recovered(const std::map<std::string, interruption>& why = {});

  // The agent reports an event of the running deployment (status InProgress when it starts,
  // Succeeded/Failed/Skipped when it ends). Publishes per-event progress.
  std::vector<action> on_event(const std::string& deployment, const records::event_progress& e);

  // The running deployment ended. Publishes resolved (only if ValidateService passed and it
  // completed), skipped (stopped mid-way) or failed; then step().
  std::vector<action> on_execution_finished(const std::string& deployment, execution_end end);

  // Time, for the progress deadline only. Then step().
  std::vector<action> on_tick(unix_ms now);

  // What the membership layer says is dead. The correct driver ignores it for tokens.
  void set_dead(std::set<std::string> dead) { dead_ = std::move(dead); }

  // Whether this host's record set may lack its own earlier records (a node that started on an
  // empty data dir, before its records matched a peer's): while unsettled it enters no
  // deployment and approves none, since its own "entered" and approval records from before the
  // wipe may still be on their way (entering again would rerun hooks: chaos soak seed 21; a
  // second approval for a parent could name another child). Settled by default.
  void set_settled(bool settled) { settled_ = settled; }

 private:
  // Ends `id`, which this host entered and did not finish (a crash, or a journal lost with the
  // data dir), as failed with DEPLOYMENT_INTERRUPTED: the event that ran (from `why`, or the
  // one InProgress in its last record) is marked, the rest Skipped. Never reruns anything.
  void interrupted(std::vector<action>& out, const std::string& id, const interruption* why);
  void persist(std::vector<action>& out, bool sync = true);
  void publish(std::vector<action>& out, records::progress_payload p, std::uint64_t version);
  void finish(std::vector<action>& out, const std::string& id, const std::string& phase,
              std::vector<records::event_progress> events);
  void skip(std::vector<action>& out, const std::string& id, const std::string& reason,
            const std::string& message, std::vector<records::event_progress> events);
  void touch(const std::string& id);

  std::string host_;
  record_set rs_;
  host_journal journal_;
  driver_options options_;
  admission_state adm_;
  std::string executing_;
  std::vector<records::event_progress> events_;  // of the running deployment
  std::uint64_t updates_ = 0;                    // progress records published for it
  bool validate_passed_ = false;
  bool stop_requested_ = false;
  bool settled_ = true;
  std::set<std::string> prefetched_;
  std::set<std::string> dead_;
  unix_ms now_ = 0;
  std::map<std::string, unix_ms> last_change_;  // deployment -> time its progress last changed
};

}  // namespace meshdeploy::deploy::rollout

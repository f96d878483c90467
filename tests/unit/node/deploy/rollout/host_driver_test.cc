// host_driver: the per-host state machine, checked through the actions it emits.
#include "node/deploy/rollout/host_driver.h"

#include "node/deploy/rollout/deployment_view.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace meshdeploy::deploy::rollout {
namespace {

records::intent_payload intent(std::string id, std::vector<std::string> targets,
                               std::uint32_t k = 1) {
  records::intent_payload p;
  p.deployment_id = std::move(id);
  p.app = "web";
  p.group = "prod";
  p.revision = "rev-" + p.deployment_id;
  p.config = k == 1 ? "OneAtATime" : "Custom";
  p.targets = std::move(targets);
  p.max_out_of_service = k;
  return p;
}

std::vector<action_kind> kinds(const std::vector<action>& v) {
  std::vector<action_kind> out;
  for (const auto& a : v) out.push_back(a.kind);
  return out;
}

const action* find(const std::vector<action>& v, action_kind k) {
  for (const auto& a : v) {
    if (a.kind == k) return &a;
  }
  return nullptr;
}

records::event_progress ev(std::string name, std::string status) {
  records::event_progress e;
  e.name = std::move(name);
  e.status = std::move(status);
  return e;
}

// Runs the whole lifecycle (as the agent would report it) and returns the driver's actions.
std::vector<action> run_all(host_driver& d, const std::string& id, bool validate_ok = true) {
  std::vector<action> out;
  for (const char* name :
       {"ApplicationStop", "BeforeInstall", "Install", "ApplicationStart", "ValidateService"}) {
    for (auto& a : d.on_event(id, ev(name, "InProgress"))) out.push_back(a);
    const bool ok = std::string(name) != "ValidateService" || validate_ok;
    for (auto& a : d.on_event(id, ev(name, ok ? "Succeeded" : "Failed"))) out.push_back(a);
  }
  for (auto& a : d.on_execution_finished(
           id, validate_ok ? execution_end::completed : execution_end::failed)) {
    out.push_back(a);
  }
  return out;
}

TEST(HostDriverTest, PrefetchesAsSoonAsTheIntentIsSeenThenApprovesDurably) {
  host_driver d("a", "web", "prod", {});
  d.add_intent(intent("d-1", {"a", "b", "c"}), 10);
  auto out = d.step();
  ASSERT_EQ(kinds(out),
            (std::vector<action_kind>{action_kind::prefetch, action_kind::persist_journal,
                                      action_kind::publish_approval}));
  EXPECT_EQ(out[0].revision, "rev-d-1");
  EXPECT_EQ(out[1].journal.approved.at(""), "d-1");  // persisted before it is published
  EXPECT_EQ(out[2].approval.child, "d-1");
  EXPECT_EQ(out[2].approval.parent, "");
  // Another intent for the same parent: no second approval.
  d.add_intent(intent("d-2", {"a", "b", "c"}), 11);
  out = d.step();
  EXPECT_EQ(find(out, action_kind::publish_approval), nullptr);
  EXPECT_NE(find(out, action_kind::prefetch), nullptr);
}

TEST(HostDriverTest, EntersOnlyOnceAdmittedAndPersistsEnteredBeforeStarting) {
  host_driver d("a", "web", "prod", {});
  d.add_intent(intent("d-1", {"a", "b", "c"}), 10);
  d.step();
  EXPECT_EQ(find(d.step(), action_kind::start_execution), nullptr);  // 1 of 3 approved
  d.add_approval({"web", "prod", "", "d-1", "b"});
  auto out = d.step();
  ASSERT_EQ(kinds(out),
            (std::vector<action_kind>{action_kind::persist_journal, action_kind::publish_progress,
                                      action_kind::start_execution}));
  EXPECT_TRUE(out[0].sync);
  EXPECT_EQ(out[0].journal.entered.count("d-1"), 1u);
  EXPECT_EQ(out[1].progress.phase, "entered");
  EXPECT_EQ(d.executing(), "d-1");
  EXPECT_TRUE(d.step().empty());  // nothing more while it runs
}

TEST(HostDriverTest, SecondPositionWaitsForTheFirstToResolve) {
  host_driver d("b", "web", "prod", {});
  d.add_intent(intent("d-1", {"a", "b", "c"}), 10);
  d.add_approval({"web", "prod", "", "d-1", "a"});
  d.step();  // b approves: admitted
  EXPECT_EQ(find(d.step(), action_kind::start_execution), nullptr);
  d.add_progress({"d-1", "a", "entered", {}}, 1);
  EXPECT_EQ(find(d.step(), action_kind::start_execution), nullptr);
  d.add_progress({"d-1", "a", "resolved", {}}, final_progress_version);
  EXPECT_NE(find(d.step(), action_kind::start_execution), nullptr);
}

TEST(HostDriverTest, ResolvesOnlyAfterValidateServicePassed) {
  host_driver d("a", "web", "prod", {});
  d.add_intent(intent("d-1", {"a"}), 10);
  d.step();
  ASSERT_EQ(d.executing(), "d-1");
  auto out = run_all(d, "d-1");
  const action& last = out.back();
  ASSERT_EQ(last.kind, action_kind::publish_progress);
  EXPECT_EQ(last.progress.phase, "resolved");
  EXPECT_EQ(last.version, final_progress_version);
  EXPECT_EQ(out[out.size() - 2].kind, action_kind::persist_journal);
  // Per-event progress was published on the way, with growing versions, still "entered".
  std::uint64_t v = 0;
  for (const auto& a : out) {
    if (a.kind != action_kind::publish_progress || a.progress.phase != "entered") continue;
    EXPECT_GT(a.version, v);
    v = a.version;
  }
  EXPECT_GT(v, 5u);
  EXPECT_EQ(judge(d.records(), d.admission(), "d-1").status, deployment_status::succeeded);

  host_driver e("a", "web", "prod", {});
  e.add_intent(intent("d-1", {"a"}), 10);
  e.step();
  // The agent says "completed" although ValidateService never passed: not a resolution.
  e.on_event("d-1", ev("ApplicationStart", "Succeeded"));
  out = e.on_execution_finished("d-1", execution_end::completed);
  ASSERT_NE(find(out, action_kind::publish_progress), nullptr);
  EXPECT_EQ(find(out, action_kind::publish_progress)->progress.phase, "failed");
}

TEST(HostDriverTest, PlantedResolveBeforeValidateResolvesWhileValidateRuns) {
  driver_options o;
  o.mutations.resolve_before_validate = true;
  host_driver d("a", "web", "prod", {}, o);
  d.add_intent(intent("d-1", {"a"}), 10);
  d.step();
  auto out = d.on_event("d-1", ev("ValidateService", "InProgress"));
  ASSERT_NE(find(out, action_kind::publish_progress), nullptr);
  EXPECT_EQ(find(out, action_kind::publish_progress)->progress.phase, "resolved");
}

TEST(HostDriverTest, PlantedSkipJournalSyncPersistsEnteredUnsynced) {
  driver_options o;
  o.mutations.skip_journal_sync = true;
  host_driver d("a", "web", "prod", {}, o);
  d.add_intent(intent("d-1", {"a"}), 10);
  auto out = d.step();
  std::vector<bool> syncs;
  for (const auto& a : out) {
    if (a.kind == action_kind::persist_journal) syncs.push_back(a.sync);
  }
  EXPECT_EQ(syncs, (std::vector<bool>{true, false}));  // approval synced, entered not
}

TEST(HostDriverTest, StopWhileRunningFinishesTheScriptThenSkips) {
  host_driver d("a", "web", "prod", {});
  d.add_intent(intent("d-1", {"a", "b"}, 2), 10);
  d.add_approval({"web", "prod", "", "d-1", "b"});
  d.step();
  ASSERT_EQ(d.executing(), "d-1");
  d.on_event("d-1", ev("ApplicationStop", "Succeeded"));
  d.add_stop({"d-1", "web", "prod", "halt"});
  auto out = d.step();
  ASSERT_EQ(kinds(out), std::vector<action_kind>{action_kind::stop_execution});
  out = d.on_execution_finished("d-1", execution_end::stopped);
  const action* p = find(out, action_kind::publish_progress);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->progress.phase, "skipped");
  EXPECT_EQ(p->progress.events.front().status, "Succeeded");  // what ran is kept
  host_fact f = fact_of(d.records(), "d-1", "a");
  EXPECT_TRUE(f.ran);
  EXPECT_EQ(f.skip_reason, skip_stopped);
}

TEST(HostDriverTest, HostThatDidNotStartPublishesSkippedOnStop) {
  host_driver d("b", "web", "prod", {});
  d.add_intent(intent("d-1", {"a", "b"}), 10);
  d.add_approval({"web", "prod", "", "d-1", "a"});
  d.step();
  d.add_stop({"d-1", "web", "prod", "halt"});
  auto out = d.step();
  const action* p = find(out, action_kind::publish_progress);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->progress.phase, "skipped");
  EXPECT_FALSE(fact_of(d.records(), "d-1", "b").ran);
  EXPECT_EQ(find(out, action_kind::start_execution), nullptr);
}

TEST(HostDriverTest, CrashInsideTheWindowEndsFailedInterruptedAndNeverReenters) {
  host_journal kept;
  {
    host_driver d("a", "web", "prod", {});
    d.add_intent(intent("d-1", {"a", "b", "c"}), 10);
    d.add_approval({"web", "prod", "", "d-1", "b"});
    d.step();
    d.on_event("d-1", ev("ApplicationStop", "Succeeded"));
    d.on_event("d-1", ev("BeforeInstall", "InProgress"));
    kept = d.journal();  // what was on disk when the process died
  }
  // Restart with the journal but without the data dir: records come back from peers later.
  host_driver d("a", "web", "prod", kept);
  auto out = d.on_recovered();
  const action* p = find(out, action_kind::publish_progress);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->progress.phase, "failed");
  EXPECT_NE(p->progress.events.front().message.find("DEPLOYMENT_INTERRUPTED"), std::string::npos);
  EXPECT_NE(find(out, action_kind::publish_approval), nullptr);  // its approval, again
  d.add_intent(intent("d-1", {"a", "b", "c"}), 10);
  d.add_approval({"web", "prod", "", "d-1", "b"});
  d.add_progress({"d-1", "a", "entered", {}}, 1);
  out = d.step();
  EXPECT_EQ(find(out, action_kind::start_execution), nullptr);
  EXPECT_EQ(fact_of(d.records(), "d-1", "a").outcome, host_outcome::failed);
}

TEST(HostDriverTest, WipedDataDirRepublishesTheIntentItApprovedAndItsFinalRecord) {
  host_journal kept;
  {
    host_driver d("a", "web", "prod", {});
    d.add_intent(intent("d-1", {"a"}), 10);
    d.step();
    run_all(d, "d-1");
    kept = d.journal();
  }
  host_driver d("a", "web", "prod", kept);  // no records at all
  auto out = d.on_recovered();
  const action* i = find(out, action_kind::republish_intent);
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->intent.deployment_id, "d-1");
  EXPECT_EQ(i->at, 10);
  const action* p = find(out, action_kind::publish_progress);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->progress.phase, "resolved");
  EXPECT_EQ(p->progress.events.size(), kept.finished.at("d-1").events.size());  // same record
  EXPECT_EQ(find(out, action_kind::start_execution), nullptr);
  EXPECT_EQ(judge(d.records(), d.admission(), "d-1").status, deployment_status::succeeded);
}

// Chaos soak seed 21: killed mid-hook, restarted with an empty data dir AND no journal. Its own
// "entered" record comes back from peers: it must end that run interrupted, not enter again;
// and while its records are not settled it enters nothing.
TEST(HostDriverTest, LostJournalWithOwnEnteredRecordEndsInterruptedNeverReenters) {
  host_driver d("a", "web", "prod", {});  // nothing survived
  d.set_settled(false);
  d.add_intent(intent("d-1", {"a", "b", "c"}), 10);
  d.add_approval({"web", "prod", "", "d-1", "b"});
  d.add_approval({"web", "prod", "", "d-1", "c"});
  auto out = d.step();
  EXPECT_EQ(find(out, action_kind::start_execution), nullptr);  // unsettled: waits
  records::progress_payload mine{"d-1", "a", "entered", {ev("ApplicationStop", "Succeeded")}};
  mine.events.push_back(ev("BeforeInstall", "InProgress"));
  d.add_progress(mine, 3);
  d.set_settled(true);
  out = d.step();
  EXPECT_EQ(find(out, action_kind::start_execution), nullptr);
  const action* p = find(out, action_kind::publish_progress);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->progress.phase, "failed");
  ASSERT_GE(p->progress.events.size(), 2u);
  EXPECT_EQ(p->progress.events[0].status, "Succeeded");
  EXPECT_EQ(p->progress.events[1].status, "Failed");
  EXPECT_NE(p->progress.events[1].message.find("DEPLOYMENT_INTERRUPTED"), std::string::npos);
  EXPECT_EQ(d.journal().entered.count("d-1"), 1u);
  EXPECT_EQ(d.journal().finished.at("d-1").phase, "failed");
  EXPECT_EQ(find(d.step(), action_kind::start_execution), nullptr);  // and never later

  // Unsettled with no record of its own: it waits; settled, it enters.
  host_driver e("a", "web", "prod", {});
  e.set_settled(false);
  e.add_intent(intent("d-1", {"a", "b", "c"}), 10);
  e.add_approval({"web", "prod", "", "d-1", "b"});
  e.add_approval({"web", "prod", "", "d-1", "c"});
  EXPECT_EQ(find(e.step(), action_kind::start_execution), nullptr);
  e.set_settled(true);
  EXPECT_NE(find(e.step(), action_kind::start_execution), nullptr);
}

TEST(HostDriverTest, LostJournalAdoptsItsOwnApprovalsAndApprovesNothingUnsettled) {
  // d-1 ran and succeeded; d-2 and d-3 are open. Before its wipe, "a" had voted for d-3 after
  // d-1 (d-3 was created later but d-2's intent had not reached it then).
  const auto done = [](const std::string& id, const std::string& h) {
    return records::progress_payload{id, h, "resolved", {}};
  };
  host_driver d("a", "web", "prod", {});  // nothing survived
  d.set_settled(false);
  d.add_intent(intent("d-1", {"a", "b", "c"}), 10);
  d.add_intent(intent("d-2", {"a", "b", "c"}), 20);
  d.add_intent(intent("d-3", {"a", "b", "c"}), 30);
  d.add_approval({"web", "prod", "", "d-1", "b"});
  d.add_approval({"web", "prod", "", "d-1", "c"});
  for (const char* h : {"a", "b", "c"}) d.add_progress(done("d-1", h), final_progress_version);
  // Unsettled: d-1 is over, but "a" signs nothing (its own vote may still be on its way).
  auto out = d.step();
  EXPECT_EQ(find(out, action_kind::publish_approval), nullptr);
  EXPECT_EQ(d.journal().approved.count("d-1"), 0u);
  // Its own vote arrives: adopted, never a second one (which would name d-2, the earliest).
  d.add_approval({"web", "prod", "d-1", "d-3", "a"});
  out = d.step();
  EXPECT_EQ(find(out, action_kind::publish_approval), nullptr);
  EXPECT_EQ(d.journal().approved.at("d-1"), "d-3");
  EXPECT_NE(find(out, action_kind::persist_journal), nullptr);
  d.set_settled(true);
  EXPECT_EQ(find(d.step(), action_kind::publish_approval), nullptr);
  EXPECT_TRUE(d.records().approval_conflicts().empty());

  // Settled and no earlier vote of its own: it approves the earliest open intent.
  host_driver e("a", "web", "prod", {});
  e.add_intent(intent("d-1", {"a", "b", "c"}), 10);
  e.add_intent(intent("d-2", {"a", "b", "c"}), 20);
  e.add_approval({"web", "prod", "", "d-1", "b"});
  e.add_approval({"web", "prod", "", "d-1", "c"});
  for (const char* h : {"a", "b", "c"}) e.add_progress(done("d-1", h), final_progress_version);
  const action* a = find(e.step(), action_kind::publish_approval);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->approval.parent, "d-1");
  EXPECT_EQ(a->approval.child, "d-2");
}

TEST(HostDriverTest, WaitingPastTheProgressDeadlineSkipsAsTimedOut) {
  driver_options o;
  o.progress_deadline_ms = 1000;
  host_driver d("b", "web", "prod", {}, o);
  d.add_intent(intent("d-1", {"a", "b"}), 10);
  d.add_approval({"web", "prod", "", "d-1", "a"});
  d.on_tick(5000);
  EXPECT_EQ(find(d.on_tick(5500), action_kind::publish_progress), nullptr);
  d.add_progress({"d-1", "a", "entered", {}}, 1);  // progress resets the deadline
  EXPECT_EQ(find(d.on_tick(6400), action_kind::publish_progress), nullptr);
  auto out = d.on_tick(7500);
  const action* p = find(out, action_kind::publish_progress);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->progress.phase, "skipped");
  host_fact f = fact_of(d.records(), "d-1", "b");
  EXPECT_EQ(f.skip_reason, skip_timed_out);
  EXPECT_NE(f.skip_message.find("a"), std::string::npos);  // names the host it waited on
  EXPECT_EQ(judge(d.records(), d.admission(), "d-1").status, deployment_status::failed);
}

TEST(HostDriverTest, ApprovesTheNextChildOnlyAfterTheParentIsOver) {
  host_driver d("a", "web", "prod", {});
  d.add_intent(intent("d-1", {"a", "b"}), 10);
  d.add_approval({"web", "prod", "", "d-1", "b"});
  d.step();
  d.add_intent(intent("d-2", {"a", "b"}), 20);
  EXPECT_EQ(find(d.step(), action_kind::publish_approval), nullptr);
  auto out = run_all(d, "d-1");
  EXPECT_EQ(find(out, action_kind::publish_approval), nullptr);  // b has not resolved yet
  d.add_progress({"d-1", "b", "resolved", {}}, final_progress_version);
  out = d.step();
  const action* a = find(out, action_kind::publish_approval);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->approval.parent, "d-1");
  EXPECT_EQ(a->approval.child, "d-2");
}

}  // namespace
}  // namespace meshdeploy::deploy::rollout

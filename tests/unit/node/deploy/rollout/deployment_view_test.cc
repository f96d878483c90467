// deployment_view: CodeDeploy's statuses as a pure, monotone function of the record set; and
// the planning decisions built on it (rollback, catch-up, target order).
#include "node/deploy/rollout/deployment_view.h"

#include "node/deploy/rollout/planning.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace meshdeploy::deploy::rollout {
namespace {

class ViewTest : public ::testing::Test {
 protected:
  // An admitted deployment `id` over `targets` with K and config.
  void deploy(const std::string& id, std::vector<std::string> targets, std::uint32_t k,
              std::string config = "Custom", std::string revision = "rev",
              std::string parent = "") {
    records::intent_payload p;
    p.deployment_id = id;
    p.app = "web";
    p.group = "prod";
    p.revision = std::move(revision);
    p.config = std::move(config);
    p.targets = targets;
    p.max_out_of_service = k;
    rs.add_intent(p, ++clock);
    for (const auto& h : targets) rs.add_approval({"web", "prod", parent, id, h});
  }
  void phase(const std::string& id, const std::string& host, const std::string& ph,
             std::string skip_reason = "") {
    records::progress_payload p{id, host, ph, {}};
    if (!skip_reason.empty()) {
      p.events.push_back({"ApplicationStop", "Skipped", 0, 0, skip_reason, "", "why", ""});
    }
    rs.add_progress(p, is_final_phase(ph) ? 1000000 : 1);
  }
  deployment_status status(const std::string& id) { return judge(rs, admit(rs), id).status; }

  record_set rs{"web", "prod"};
  unix_ms clock = 0;
};

TEST_F(ViewTest, AllResolvedSucceeds) {
  deploy("d-1", {"a", "b", "c"}, 1, "OneAtATime");
  EXPECT_EQ(status("d-1"), deployment_status::in_progress);
  for (auto h : {"a", "b", "c"}) phase("d-1", h, "resolved");
  EXPECT_EQ(status("d-1"), deployment_status::succeeded);
}

TEST_F(ViewTest, OneAtATimeOnlyLastHostFailedStillSucceeds) {
  deploy("d-1", {"a", "b", "c"}, 1, "OneAtATime");
  phase("d-1", "a", "resolved");
  phase("d-1", "b", "resolved");
  phase("d-1", "c", "failed");
  EXPECT_EQ(status("d-1"), deployment_status::succeeded);
}

TEST_F(ViewTest, OneAtATimeEarlierFailureFailsAtOnce) {
  deploy("d-1", {"a", "b", "c"}, 1, "OneAtATime");
  phase("d-1", "a", "failed");
  auto o = judge(rs, admit(rs), "d-1");
  EXPECT_EQ(o.status, deployment_status::failed);
  ASSERT_TRUE(o.error.has_value());
  EXPECT_EQ(o.error->code, "HEALTH_CONSTRAINTS");
  EXPECT_NE(o.error->message.find("a"), std::string::npos);
}

TEST_F(ViewTest, HalfAtATimeNeedsHalfRoundedUp) {
  // N=4, K=2: two failures are tolerated, the third fails it.
  deploy("d-1", {"a", "b", "c", "d"}, 2, "HalfAtATime");
  phase("d-1", "a", "failed");
  phase("d-1", "b", "failed");
  EXPECT_EQ(status("d-1"), deployment_status::in_progress);
  phase("d-1", "c", "resolved");
  phase("d-1", "d", "resolved");
  EXPECT_EQ(status("d-1"), deployment_status::succeeded);
  deploy("d-2", {"a", "b", "c", "d"}, 2, "HalfAtATime", "rev", "d-1");
  for (auto h : {"a", "b", "c"}) phase("d-2", h, "failed");
  EXPECT_EQ(status("d-2"), deployment_status::failed);
}

TEST_F(ViewTest, AllAtOnceNeedsOneSuccess) {
  deploy("d-1", {"a", "b", "c"}, 3, "AllAtOnce");
  phase("d-1", "a", "failed");
  phase("d-1", "b", "failed");
  EXPECT_EQ(status("d-1"), deployment_status::in_progress);
  phase("d-1", "c", "resolved");
  EXPECT_EQ(status("d-1"), deployment_status::succeeded);
}

TEST_F(ViewTest, ExcludedHostIsUnknownAndCountsAsFailed) {
  deploy("d-1", {"a", "b", "c", "d"}, 2, "HalfAtATime");
  rs.add_exclude({"d-1", "web", "prod", "a"});
  auto r = view(rs, admit(rs), "d-1", {});
  EXPECT_EQ(r.status, deployment_status::in_progress);  // 2 of 4 may fail
  EXPECT_EQ(r.hosts[0].status, host_status::unknown);
  // Its own failed record arriving later changes nothing: both count once, as a failure.
  phase("d-1", "a", "failed");
  for (auto h : {"b", "c", "d"}) phase("d-1", h, "resolved");
  EXPECT_EQ(status("d-1"), deployment_status::succeeded);
  // OneAtATime: an excluded host other than the last fails it, like a failure would.
  deploy("d-2", {"a", "b", "c"}, 1, "OneAtATime", "rev", "d-1");
  rs.add_exclude({"d-2", "web", "prod", "b"});
  EXPECT_EQ(status("d-2"), deployment_status::failed);
}

TEST_F(ViewTest, StopEndsStoppedOnceEveryHostSettled) {
  deploy("d-1", {"a", "b", "c"}, 1, "OneAtATime");
  phase("d-1", "a", "resolved");
  phase("d-1", "b", "entered");
  rs.add_stop({"d-1", "web", "prod", "operator said so"});
  EXPECT_EQ(status("d-1"), deployment_status::in_progress);  // b is still inside
  phase("d-1", "c", "skipped", skip_stopped);
  phase("d-1", "b", "skipped", skip_stopped);
  auto o = judge(rs, admit(rs), "d-1");
  EXPECT_EQ(o.status, deployment_status::stopped);
  EXPECT_EQ(o.error->message, "operator said so");
}

TEST_F(ViewTest, TimedOutSkipFailsTheDeployment) {
  deploy("d-1", {"a", "b", "c"}, 1, "OneAtATime");
  phase("d-1", "a", "entered");
  phase("d-1", "b", "skipped", skip_timed_out);
  auto o = judge(rs, admit(rs), "d-1");
  EXPECT_EQ(o.status, deployment_status::failed);
  EXPECT_EQ(o.error->code, "DEPLOYMENT_TIMED_OUT");
}

TEST_F(ViewTest, NoTargetsFailsWithNoInstances) {
  records::intent_payload p;
  p.deployment_id = "d-0";
  p.app = "web";
  p.group = "prod";
  rs.add_intent(p, 1);
  auto o = judge(rs, admit(rs), "d-0");
  EXPECT_EQ(o.status, deployment_status::failed);
  EXPECT_EQ(o.error->code, "NO_INSTANCES");
}

TEST_F(ViewTest, QueuedBehindARunningDeploymentThenLosingNamesTheWinner) {
  deploy("d-1", {"a", "b", "c"}, 1, "OneAtATime");
  records::intent_payload p = rs.intent("d-1")->intent;
  p.deployment_id = "d-2";
  rs.add_intent(p, 50);
  EXPECT_EQ(status("d-2"), deployment_status::queued);
  p.deployment_id = "d-3";
  rs.add_intent(p, 60);
  for (auto h : {"a", "b", "c"}) phase("d-1", h, "resolved");
  rs.add_approval({"web", "prod", "d-1", "d-3", "a"});
  rs.add_approval({"web", "prod", "d-1", "d-2", "b"});
  rs.add_approval({"web", "prod", "d-1", "d-3", "c"});
  auto o = judge(rs, admit(rs), "d-2");
  EXPECT_EQ(o.status, deployment_status::failed);
  EXPECT_EQ(o.error->code, "DEPLOYMENT_GROUP_BUSY");
  EXPECT_NE(o.error->message.find("d-3"), std::string::npos);
}

TEST_F(ViewTest, ViewListsEveryTargetWithItsEvents) {
  deploy("d-1", {"a", "b"}, 1, "OneAtATime");
  records::progress_payload p{"d-1", "a", "entered", {}};
  p.events.push_back({"ApplicationStop", "Succeeded", 5, 7, "", "", "", ""});
  p.events.push_back({"BeforeInstall", "Failed", 7, 9, "ScriptFailed", "x.sh", "exit 1", "tail"});
  rs.add_progress(p, 3);
  auto r = view(rs, admit(rs), "d-1", {"gid", "tar"});
  ASSERT_EQ(r.hosts.size(), 2u);
  EXPECT_EQ(r.hosts[0].status, host_status::in_progress);
  ASSERT_EQ(r.hosts[0].events.size(), 2u);
  ASSERT_TRUE(r.hosts[0].events[1].diag.has_value());
  EXPECT_EQ(r.hosts[0].events[1].diag->script_name, "x.sh");
  EXPECT_EQ(r.hosts[1].status, host_status::pending);
  EXPECT_GT(r.hosts[1].events.size(), 5u);
  EXPECT_EQ(r.group_id, "gid");
}

// Terminal statuses never change as more records arrive: replay random prefixes of one
// execution's records and check that once terminal, every longer prefix agrees.
TEST_F(ViewTest, TerminalStatusIsMonotoneOverRecordPrefixes) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 300; ++round) {
    const int n = 2 + static_cast<int>(rng() % 5);
    std::vector<std::string> hosts;
    for (int i = 0; i < n; ++i) hosts.push_back("h" + std::to_string(i));
    const std::uint32_t k = 1 + static_cast<std::uint32_t>(rng() % n);
    // A history each host could produce: entered, then one final phase.
    std::vector<std::tuple<std::string, std::string, std::string>> history;  // host, phase, why
    for (const auto& h : hosts) {
      const auto r = rng() % 4;
      if (r == 0) continue;
      history.emplace_back(h, "entered", "");
      if (r == 1) history.emplace_back(h, "resolved", "");
      if (r == 2) history.emplace_back(h, "failed", "");
    }
    std::shuffle(history.begin(), history.end(), rng);
    record_set local{"web", "prod"};
    records::intent_payload p;
    p.deployment_id = "d-1";
    p.app = "web";
    p.group = "prod";
    p.config = (rng() % 2) ? "OneAtATime" : "Custom";
    p.targets = hosts;
    p.max_out_of_service = k;
    local.add_intent(p, 1);
    for (const auto& h : hosts) local.add_approval({"web", "prod", "", "d-1", h});
    std::optional<deployment_status> terminal;
    for (const auto& [h, ph, why] : history) {
      local.add_progress({"d-1", h, ph, {}}, ph == "entered" ? 1 : 1000000);
      const auto st = judge(local, admit(local), "d-1").status;
      if (terminal) {
        ASSERT_EQ(st, *terminal) << "round " << round;
      } else if (is_terminal(st)) {
        terminal = st;
      }
    }
  }
}

TEST_F(ViewTest, LastSuccessfulRevisionAndAutoRollback) {
  deploy("d-1", {"a", "b"}, 1, "OneAtATime", "rev-good");
  phase("d-1", "a", "resolved");
  phase("d-1", "b", "resolved");
  deploy("d-2", {"a", "b"}, 1, "OneAtATime", "rev-bad", "d-1");
  EXPECT_FALSE(auto_rollback_due(rs, admit(rs)).has_value());  // still running
  phase("d-2", "a", "failed");
  auto s = admit(rs);
  auto plan = auto_rollback_due(rs, s);
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->rolls_back, "d-2");
  EXPECT_EQ(plan->target.revision, "rev-good");
  EXPECT_EQ(last_successful_revision(rs, s)->deployment, "d-1");
  records::intent_payload rb = rs.intent("d-1")->intent;
  rb.deployment_id = "d-3";
  rb.rollback_of = "d-2";
  rs.add_intent(rb, 99);
  EXPECT_FALSE(auto_rollback_due(rs, admit(rs)).has_value());  // already rolled back
}

TEST_F(ViewTest, CatchUpGivesANewHostTheLastSuccessfulRevision) {
  deploy("d-1", {"a", "b"}, 1, "OneAtATime", "rev-good");
  EXPECT_FALSE(catch_up(rs, admit(rs), "new").has_value());  // still running
  phase("d-1", "a", "resolved");
  phase("d-1", "b", "resolved");
  auto c = catch_up(rs, admit(rs), "new");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->revision, "rev-good");
  EXPECT_FALSE(catch_up(rs, admit(rs), "a").has_value());  // already has it
}

TEST_F(ViewTest, CatchUpsDoNotCascade) {
  deploy("d-1", {"a", "b"}, 1, "OneAtATime", "rev-good");
  phase("d-1", "a", "resolved");
  phase("d-1", "b", "resolved");
  // A node's own catch-up, as mesh_deployer writes it.
  auto catch_up_of = [&](const std::string& id, const std::string& host,
                         const std::string& parent) {
    records::intent_payload p;
    p.deployment_id = id;
    p.app = "web";
    p.group = "prod";
    p.revision = "rev-good";
    p.config = "OneAtATime";
    p.targets = {host};
    p.creator = std::string(node_creator_prefix) + host;
    rs.add_intent(p, ++clock);
    rs.add_approval({"web", "prod", parent, id, host});
    phase(id, host, "resolved");
  };
  ASSERT_TRUE(catch_up(rs, admit(rs), "x").has_value());
  catch_up_of("c-x", "x", "d-1");
  ASSERT_EQ(admit(rs).chain.back(), "c-x");
  // x's catch-up succeeded last; a and b took part in d-1 and must not catch up again (they
  // did, and each new catch-up was the next one's reason, without end).
  EXPECT_FALSE(catch_up(rs, admit(rs), "a").has_value());
  EXPECT_FALSE(catch_up(rs, admit(rs), "b").has_value());
  EXPECT_FALSE(catch_up(rs, admit(rs), "x").has_value());
  auto y = catch_up(rs, admit(rs), "y");  // another new host still catches up, from d-1
  ASSERT_TRUE(y.has_value());
  EXPECT_EQ(y->deployment, "d-1");
  EXPECT_EQ(y->revision, "rev-good");
  catch_up_of("c-y", "y", "c-x");
  EXPECT_FALSE(catch_up(rs, admit(rs), "x").has_value());
  EXPECT_FALSE(catch_up(rs, admit(rs), "a").has_value());
}

TEST_F(ViewTest, ElectorateIsThePreviousDeploymentsHostsLeftOut) {
  deploy("d-1", {"a", "b", "c", "d", "e"}, 1, "OneAtATime");
  // Planned over a view of one host (cut off): the four others still count.
  EXPECT_EQ(plan_electorate(rs, admit(rs), {"c"}), (std::vector<std::string>{"a", "b", "d", "e"}));
  EXPECT_TRUE(plan_electorate(rs, admit(rs), {"a", "b", "c", "d", "e"}).empty());
  const target_plan alone = plan_targets(rs, admit(rs), {"c"}, "d-2");
  EXPECT_EQ(alone.targets, (std::vector<std::string>{"c"}));
  // Nobody reported in d-1: unknown hosts may still be out of service from it.
  EXPECT_EQ(alone.absent_out_of_service, (std::vector<std::string>{"a", "b", "d", "e"}));
  const committee_reach r = reach_of("web", "prod", alone);
  EXPECT_EQ(r.committee, 5u);
  EXPECT_EQ(r.live, 1u);
  EXPECT_FALSE(r.majority());
  EXPECT_TRUE(
      reach_of("web", "prod", plan_targets(rs, admit(rs), {"a", "c", "e"}, "d-2")).majority());
  EXPECT_FALSE(reach_of("web", "prod", plan_targets(rs, admit(rs), {"a", "c"}, "d-2")).majority());

  // A host left out of two plans in a row stops counting: d-2 ran without e.
  deploy("d-2", {"a", "b", "c", "d"}, 1, "OneAtATime", "rev", "d-1");
  EXPECT_EQ(plan_electorate(rs, admit(rs), {"a", "b", "c"}), (std::vector<std::string>{"d"}));

  // Catch-ups (one target each) do not hide the deployment before them.
  records::intent_payload c;
  c.deployment_id = "c-x";
  c.app = "web";
  c.group = "prod";
  c.revision = "rev";
  c.config = "OneAtATime";
  c.targets = {"x"};
  c.creator = std::string(node_creator_prefix) + "x";
  rs.add_intent(c, ++clock);
  rs.add_approval({"web", "prod", "d-2", "c-x", "x"});
  ASSERT_EQ(admit(rs).chain.back(), "c-x");
  EXPECT_EQ(plan_electorate(rs, admit(rs), {"a"}), (std::vector<std::string>{"b", "c", "d", "x"}));
}

TEST_F(ViewTest, OrderPutsHostsThatFailedLastFirst) {
  deploy("d-1", {"a", "b", "c", "d"}, 4, "AllAtOnce");
  phase("d-1", "a", "resolved");
  phase("d-1", "b", "resolved");
  phase("d-1", "c", "failed");
  phase("d-1", "d", "resolved");
  auto order = order_targets(rs, admit(rs), {"a", "b", "c", "d", "e"}, "d-2");
  EXPECT_EQ(order.front(), "c");
  EXPECT_EQ(order.size(), 5u);
  auto again = order_targets(rs, admit(rs), {"e", "d", "c", "b", "a"}, "d-2");
  EXPECT_EQ(order, again);  // independent of the input order
}

}  // namespace
}  // namespace meshdeploy::deploy::rollout

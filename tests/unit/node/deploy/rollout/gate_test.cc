// The rollout gate: at most K-1 blockers, tokens held by failed/silent hosts, nothing frees a
// token but a resolution or an exclude.
#include "node/deploy/rollout/gate.h"

#include "node/deploy/rollout/deployment_view.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace meshdeploy::deploy::rollout {
namespace {

class GateTest : public ::testing::Test {
 protected:
  void deploy(const std::string& id, std::vector<std::string> targets, std::uint32_t k,
              std::string config = "Custom", std::string parent = "",
              std::vector<std::string> electorate = {}) {
    records::intent_payload p;
    p.deployment_id = id;
    p.app = "web";
    p.group = "prod";
    p.config = std::move(config);
    p.targets = targets;
    p.electorate = std::move(electorate);
    p.max_out_of_service = k;
    rs.add_intent(p, ++clock);
    for (const auto& h : targets) rs.add_approval({"web", "prod", parent, id, h});
  }
  void phase(const std::string& id, const std::string& host, const std::string& ph) {
    rs.add_progress({id, host, ph, {}}, is_final_phase(ph) ? 1000000 : 1);
  }
  gate_result g(const std::string& id, const std::string& host, test_mutations m = {},
                std::set<std::string> dead = {}) {
    return gate(rs, admit(rs), id, host, m, dead);
  }

  record_set rs{"web", "prod"};
  unix_ms clock = 0;
  const std::vector<std::string> six = {"a", "b", "c", "d", "e", "f"};
};

TEST_F(GateTest, EntersWithAtMostKMinusOneEarlierUnresolved) {
  deploy("d-1", six, 2);
  EXPECT_EQ(g("d-1", "a").decision, gate_decision::enter);
  EXPECT_EQ(g("d-1", "b").decision, gate_decision::enter);
  auto c = g("d-1", "c");
  EXPECT_EQ(c.decision, gate_decision::wait);
  EXPECT_EQ(c.blockers, (std::vector<std::string>{"a", "b"}));
  phase("d-1", "a", "entered");
  phase("d-1", "a", "resolved");
  EXPECT_EQ(g("d-1", "c").decision, gate_decision::enter);
  EXPECT_EQ(g("d-1", "d").decision, gate_decision::wait);
}

TEST_F(GateTest, AnUnknownEarlierHostBlocksLikeAStartedOne) {
  deploy("d-1", six, 1);
  // Nobody has reported: b must still wait for a (a may be inside without b knowing).
  EXPECT_EQ(g("d-1", "b").decision, gate_decision::wait);
  test_mutations m;
  m.count_only_started = true;
  EXPECT_EQ(g("d-1", "b", m).decision, gate_decision::enter);  // the planted bug
}

TEST_F(GateTest, FailedHostKeepsItsTokenAndDeadDoesNotFreeIt) {
  deploy("d-1", six, 3, "HalfAtATime");
  phase("d-1", "a", "failed");
  phase("d-1", "b", "entered");
  phase("d-1", "c", "entered");
  EXPECT_EQ(g("d-1", "d").decision, gate_decision::wait);
  // SWIM says b and c are dead: still out of service.
  EXPECT_EQ(g("d-1", "d", {}, {"b", "c"}).decision, gate_decision::wait);
  test_mutations m;
  m.free_token_on_dead = true;
  EXPECT_EQ(g("d-1", "d", m, {"b", "c"}).decision, gate_decision::enter);  // the planted bug
}

TEST_F(GateTest, OperatorExcludeFreesAToken) {
  deploy("d-1", six, 1, "Custom");
  phase("d-1", "a", "entered");
  EXPECT_EQ(g("d-1", "b").decision, gate_decision::wait);
  rs.add_exclude({"d-1", "web", "prod", "a"});
  // K=1 with a custom minimum of 5 of 6: one excluded (failed) host is within N - H = 1.
  EXPECT_EQ(g("d-1", "b").decision, gate_decision::enter);
  EXPECT_EQ(g("d-1", "a").decision, gate_decision::skip);  // a itself is fenced
}

TEST_F(GateTest, GateOfKIsThePlantedBug) {
  deploy("d-1", six, 2);
  test_mutations m;
  m.gate_allows_k_blockers = true;
  EXPECT_EQ(g("d-1", "c").decision, gate_decision::wait);
  EXPECT_EQ(g("d-1", "c", m).decision, gate_decision::enter);
}

TEST_F(GateTest, StopOrNotAdmittedOrOverMeansNoEntry) {
  records::intent_payload p;
  p.deployment_id = "d-9";
  p.app = "web";
  p.group = "prod";
  p.config = "OneAtATime";
  p.targets = six;
  p.max_out_of_service = 1;
  rs.add_intent(p, 1);
  EXPECT_EQ(g("d-9", "a").decision, gate_decision::wait);  // no approvals yet
  for (auto h : {"a", "b", "c", "d"}) rs.add_approval({"web", "prod", "", "d-9", h});
  EXPECT_EQ(g("d-9", "a").decision, gate_decision::enter);
  rs.add_stop({"d-9", "web", "prod", "enough"});
  auto r = g("d-9", "a");
  EXPECT_EQ(r.decision, gate_decision::skip);
  EXPECT_EQ(r.reason, skip_stopped);
  EXPECT_NE(r.message.find("enough"), std::string::npos);
}

TEST_F(GateTest, FailedHostsHoldingAllTokensSkipTheRest) {
  deploy("d-1", {"a", "b", "c", "d"}, 2, "HalfAtATime");
  phase("d-1", "a", "failed");
  phase("d-1", "b", "failed");
  auto r = g("d-1", "c");
  EXPECT_EQ(r.decision, gate_decision::skip);
  EXPECT_EQ(r.reason, skip_health);
}

// A host that failed in d-1 and was left out of d-2's plan (dead or cut off when it was
// planned) is in d-2's electorate: it is still out of service, so it holds a token of d-2.
// (The simulator, planning over each submitter's view, found 5 out with K = 4 before this.)
TEST_F(GateTest, AbsentHostStillOutOfServiceFromBeforeBlocksEveryTarget) {
  deploy("d-1", {"a", "b", "c"}, 3);
  phase("d-1", "a", "failed");
  phase("d-1", "b", "resolved");
  phase("d-1", "c", "resolved");
  deploy("d-2", {"b", "c"}, 1, "Custom", "d-1", {"a"});
  auto b = g("d-2", "b");
  EXPECT_EQ(b.decision, gate_decision::wait);
  EXPECT_EQ(b.blockers, (std::vector<std::string>{"a"}));
  // Not for a catch-up: it would hold the group's next deployments behind it (chaos seed 2).
  rs = record_set("web", "prod");
  deploy("d-1", {"a", "b", "c"}, 3);
  phase("d-1", "a", "failed");
  phase("d-1", "b", "resolved");
  phase("d-1", "c", "resolved");
  records::intent_payload c;
  c.deployment_id = "c-d";
  c.app = "web";
  c.group = "prod";
  c.config = "OneAtATime";
  c.targets = {"d"};
  c.electorate = {"a", "b", "c"};
  c.max_out_of_service = 1;
  c.creator = std::string(node_creator_prefix) + "d";
  rs.add_intent(c, ++clock);
  for (const char* h : {"d", "b", "c"}) rs.add_approval({"web", "prod", "d-1", "c-d", h});
  EXPECT_EQ(g("c-d", "d").decision, gate_decision::enter);
  // An absent host that resolved does not block.
  rs = record_set("web", "prod");
  deploy("d-1", {"a", "b", "c"}, 3);
  for (const char* h : {"a", "b", "c"}) phase("d-1", h, "resolved");
  deploy("d-2", {"b", "c"}, 1, "Custom", "d-1", {"a"});
  EXPECT_EQ(g("d-2", "b").decision, gate_decision::enter);
}

TEST_F(GateTest, HostStillOutOfServiceFromThePreviousDeploymentBlocksLaterPositionsToo) {
  deploy("d-1", {"a", "b", "c"}, 3, "AllAtOnce");
  phase("d-1", "a", "resolved");
  phase("d-1", "b", "resolved");
  phase("d-1", "c", "failed");
  ASSERT_TRUE(is_terminal(judge(rs, admit(rs), "d-1").status));
  // d-2 planned before c failed: c is last, yet it is out of service since d-1.
  deploy("d-2", {"a", "b", "c"}, 1, "OneAtATime", "d-1");
  auto r = g("d-2", "a");
  EXPECT_EQ(r.decision, gate_decision::wait);
  EXPECT_EQ(r.blockers, std::vector<std::string>{"c"});
  // c itself is already out of service: it enters without taking a token, so a failed host
  // at a late position cannot deadlock the rollout.
  EXPECT_EQ(g("d-2", "c").decision, gate_decision::enter);
  EXPECT_TRUE(out_of_service_before(rs, admit(rs), "d-2", "c"));
  EXPECT_FALSE(out_of_service_before(rs, admit(rs), "d-2", "b"));
}

}  // namespace
}  // namespace meshdeploy::deploy::rollout

// The rollout gate and the status document as pure functions of a deployment's records.
#include "node/deploy/mesh_view.h"

#include <gtest/gtest.h>

namespace meshdeploy::deploy {
namespace {

deployment_records make(std::vector<std::string> targets, std::uint32_t k) {
  deployment_records d;
  d.intent.deployment_id = "d-1";
  d.intent.app = "web";
  d.intent.group = "prod";
  d.intent.config = "Custom";
  d.intent.targets = std::move(targets);
  d.intent.max_out_of_service = k;
  d.created = 1000;
  d.admitted = true;
  return d;
}

records::approval_payload vote(std::string parent, std::string child, std::string host) {
  return records::approval_payload{"web", "prod", std::move(parent), std::move(child),
                                   std::move(host)};
}

void set_phase(deployment_records& d, const std::string& host, const std::string& phase) {
  records::progress_payload p;
  p.deployment_id = "d-1";
  p.host = host;
  p.phase = phase;
  d.progress[host] = p;
}

deployment_config count(std::uint32_t min_healthy) {
  return deployment_config{"Custom", min_healthy_type::host_count, min_healthy, false};
}

TEST(MeshViewTest, GateLetsAtMostKUnresolvedPositionsAhead) {
  auto d = make({"a", "b", "c", "d"}, 2);
  const auto cfg = count(2);
  EXPECT_EQ(gate(d, cfg, "a"), gate_decision::enter);
  EXPECT_EQ(gate(d, cfg, "b"), gate_decision::enter);  // one unresolved ahead, K-1 = 1
  EXPECT_EQ(gate(d, cfg, "c"), gate_decision::wait);
  set_phase(d, "a", "resolved");
  EXPECT_EQ(gate(d, cfg, "c"), gate_decision::enter);
  EXPECT_EQ(gate(d, cfg, "d"), gate_decision::wait);
}

TEST(MeshViewTest, AFailedHostKeepsItsTokenUntilExcluded) {
  auto d = make({"a", "b", "c", "d", "e"}, 2);
  const auto cfg = count(1);  // failures tolerated: up to 4
  set_phase(d, "a", "failed");
  set_phase(d, "b", "entered");
  EXPECT_EQ(gate(d, cfg, "c"), gate_decision::wait);  // a (failed) and b hold both tokens
  d.excluded.insert("a");
  EXPECT_EQ(gate(d, cfg, "c"), gate_decision::enter);
}

TEST(MeshViewTest, StopAndFailureEndTheRollout) {
  auto d = make({"a", "b", "c"}, 1);
  EXPECT_EQ(gate(d, count(2), "a"), gate_decision::enter);
  d.stop = records::stop_payload{"d-1", "web", "prod", "operator"};
  EXPECT_EQ(gate(d, count(2), "a"), gate_decision::skip);
  auto f = make({"a", "b", "c"}, 1);
  set_phase(f, "a", "failed");
  EXPECT_EQ(gate(f, count(2), "b"), gate_decision::skip);  // min healthy 2 of 3 is gone
}

TEST(MeshViewTest, StatusFollowsTheRecords) {
  const auto cfg = count(1);
  auto none = make({}, 1);
  auto v = view(none, cfg, "gid", "tar");
  EXPECT_EQ(v.status, deployment_status::failed);
  ASSERT_TRUE(v.error);
  EXPECT_EQ(v.error->code, "NO_INSTANCES");

  auto d = make({"a", "b"}, 1);
  EXPECT_EQ(view(d, cfg, "gid", "tar").status, deployment_status::created);
  set_phase(d, "a", "entered");
  v = view(d, cfg, "gid", "tar");
  EXPECT_EQ(v.status, deployment_status::in_progress);
  EXPECT_EQ(v.hosts[0].status, host_status::in_progress);
  EXPECT_EQ(v.hosts[1].status, host_status::pending);
  EXPECT_EQ(v.hosts[1].events.size(), v.hosts[0].events.size());
  set_phase(d, "a", "resolved");
  set_phase(d, "b", "resolved");
  EXPECT_EQ(view(d, cfg, "gid", "tar").status, deployment_status::succeeded);

  auto s = make({"a", "b"}, 1);
  set_phase(s, "a", "entered");
  s.stop = records::stop_payload{"d-1", "web", "prod", "stopped by the operator"};
  EXPECT_EQ(view(s, cfg, "gid", "tar").status, deployment_status::in_progress);  // a still inside
  set_phase(s, "a", "skipped");
  set_phase(s, "b", "skipped");
  v = view(s, cfg, "gid", "tar");
  EXPECT_EQ(v.status, deployment_status::stopped);
  EXPECT_EQ(v.error->code, "DEPLOYMENT_STOPPED");
}

TEST(MeshViewTest, OneAtATimeToleratesOnlyTheLastHostFailing) {
  const deployment_config one{"OneAtATime", min_healthy_type::one_at_a_time, 0, true};
  auto d = make({"a", "b", "c"}, 1);
  set_phase(d, "a", "resolved");
  set_phase(d, "b", "resolved");
  set_phase(d, "c", "failed");
  EXPECT_EQ(view(d, one, "gid", "tar").status, deployment_status::succeeded);
  auto e = make({"a", "b", "c"}, 1);
  set_phase(e, "a", "failed");
  auto v = view(e, one, "gid", "tar");
  EXPECT_EQ(v.status, deployment_status::failed);
  EXPECT_EQ(v.error->code, "HEALTH_CONSTRAINTS");
}

TEST(MeshViewTest, AdmissionChainsDeploymentsOnePerParent) {
  const std::vector<group_intent> intents = {
      {"d-1", {"a", "b", "c"}, 10}, {"d-2", {"a", "b", "c"}, 11}, {"d-3", {"a", "b", "c"}, 12}};
  // Concurrent d-1 and d-2 for the first parent: d-1 gets a majority, d-2 loses.
  auto adm = admit(intents, {vote("", "d-1", "a"), vote("", "d-2", "b"), vote("", "d-1", "c")});
  EXPECT_EQ(adm.chain, std::vector<std::string>{"d-1"});
  EXPECT_EQ(adm.lost_to.at("d-2"), "d-1");
  EXPECT_EQ(adm.lost_to.count("d-3"), 0u);  // it had no votes: it queues for the next parent
  adm = admit(intents, {vote("", "d-1", "a"), vote("", "d-2", "b"), vote("", "d-1", "c"),
                        vote("d-1", "d-3", "a"), vote("d-1", "d-3", "b")});
  EXPECT_EQ(adm.chain, (std::vector<std::string>{"d-1", "d-3"}));
  // No majority yet and not everyone voted: nothing decided.
  adm = admit(intents, {vote("", "d-1", "a"), vote("", "d-2", "b")});
  EXPECT_TRUE(adm.chain.empty());
  // Votes from hosts that are not targets do not count.
  adm = admit(intents, {vote("", "d-1", "x"), vote("", "d-1", "y"), vote("", "d-1", "a")});
  EXPECT_TRUE(adm.chain.empty());
}

TEST(MeshViewTest, AnEvenSplitIsDecidedOnceEveryoneVoted) {
  const std::vector<group_intent> intents = {{"d-2", {"a", "b"}, 11}, {"d-1", {"a", "b"}, 10}};
  auto adm = admit(intents, {vote("", "d-1", "a"), vote("", "d-2", "b")});
  ASSERT_EQ(adm.chain, std::vector<std::string>{"d-1"});  // equal votes: the earlier one
  EXPECT_EQ(adm.lost_to.at("d-2"), "d-1");
}

TEST(MeshViewTest, QueuedUntilAdmittedAndLosersFailNamingTheWinner) {
  auto d = make({"a", "b"}, 1);
  d.admitted = false;
  EXPECT_EQ(gate(d, count(1), "a"), gate_decision::wait);
  EXPECT_EQ(view(d, count(1), "gid", "tar").status, deployment_status::queued);
  d.lost_to = "d-9";
  EXPECT_EQ(gate(d, count(1), "a"), gate_decision::skip);
  auto v = view(d, count(1), "gid", "tar");
  EXPECT_EQ(v.status, deployment_status::failed);
  EXPECT_NE(v.error->message.find("d-9"), std::string::npos);
}

}  // namespace
}  // namespace meshdeploy::deploy

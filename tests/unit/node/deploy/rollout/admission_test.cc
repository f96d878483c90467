// Admission: one active deployment per group, by majority of the admission committee.
#include "node/deploy/rollout/admission.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace meshdeploy::deploy::rollout {
namespace {

records::intent_payload intent(std::string id, std::vector<std::string> targets) {
  records::intent_payload p;
  p.deployment_id = std::move(id);
  p.app = "web";
  p.group = "prod";
  p.config = "OneAtATime";
  p.targets = std::move(targets);
  return p;
}

void vote(record_set& s, std::string parent, std::string child, std::string host) {
  s.add_approval({"web", "prod", std::move(parent), std::move(child), std::move(host)});
}

const std::vector<std::string> five = {"a", "b", "c", "d", "e"};

TEST(AdmissionTest, MajorityOfTargetsAdmits) {
  record_set s("web", "prod");
  s.add_intent(intent("d-1", five), 10);
  vote(s, "", "d-1", "a");
  vote(s, "", "d-1", "b");
  EXPECT_TRUE(admit(s).chain.empty());
  vote(s, "", "d-1", "c");
  auto a = admit(s);
  ASSERT_EQ(a.chain, std::vector<std::string>{"d-1"});
  EXPECT_EQ(a.parent_of.at("d-1"), "");
  EXPECT_EQ(a.latest(), "d-1");
}

// Seed 11 of the chaos harness: a submitter cut off from the mesh planned over itself alone.
// With the previous deployment's other hosts in its electorate, its own vote is not a majority,
// and a non-target electorate member's vote counts.
TEST(AdmissionTest, ElectorateCountsAndACutOffPlannerCannotAdmitAlone) {
  record_set s("web", "prod");
  auto alone = intent("d-alone", {"c"});
  alone.electorate = {"a", "b", "d", "e"};
  s.add_intent(alone, 11);
  ASSERT_NE(s.intent("d-alone"), nullptr);
  EXPECT_EQ(s.intent("d-alone")->committee, (std::vector<std::string>{"c", "a", "b", "d", "e"}));
  vote(s, "", "d-alone", "c");
  EXPECT_TRUE(admit(s).chain.empty());  // 1 of 5: not admitted
  // The rest of the group admits an older intent meanwhile: one parent, one child (an older
  // intent would lose to it, docs/rollout.md "Losers"; this newer one queues).
  s.add_intent(intent("d-all", five), 10);
  for (const char* h : {"a", "b", "d"}) vote(s, "", "d-all", h);
  auto a = admit(s);
  EXPECT_EQ(a.chain, std::vector<std::string>{"d-all"});
  EXPECT_FALSE(a.admitted("d-alone"));
  // Non-target electorate members vote for it under the next parent.
  EXPECT_TRUE(next_approval(s, a, "a").has_value());
  for (const char* h : {"a", "b"}) vote(s, "d-all", "d-alone", h);
  EXPECT_FALSE(admit(s).admitted("d-alone"));
  vote(s, "d-all", "d-alone", "e");
  a = admit(s);
  EXPECT_EQ(a.chain, (std::vector<std::string>{"d-all", "d-alone"}));
}

TEST(AdmissionTest, ConcurrentIntentsOneWinsOtherLosesNamingIt) {
  record_set s("web", "prod");
  s.add_intent(intent("d-1", five), 10);
  s.add_intent(intent("d-2", five), 10);
  vote(s, "", "d-2", "a");
  vote(s, "", "d-1", "b");
  vote(s, "", "d-2", "c");
  EXPECT_TRUE(admit(s).chain.empty());
  vote(s, "", "d-2", "d");
  auto a = admit(s);
  EXPECT_EQ(a.chain, std::vector<std::string>{"d-2"});
  EXPECT_EQ(a.lost_to.at("d-1"), "d-2");
}

TEST(AdmissionTest, EvenSplitIsDecidedOnceEveryoneVotedEarliestWins) {
  const std::vector<std::string> four = {"a", "b", "c", "d"};
  record_set s("web", "prod");
  s.add_intent(intent("d-late", four), 20);
  s.add_intent(intent("d-early", four), 10);
  vote(s, "", "d-late", "a");
  vote(s, "", "d-late", "b");
  vote(s, "", "d-early", "c");
  EXPECT_TRUE(admit(s).chain.empty());  // d may still tip it
  vote(s, "", "d-early", "d");
  auto a = admit(s);
  EXPECT_EQ(a.chain, std::vector<std::string>{"d-early"});
  // The newer one was not overtaken: it queues for the next parent.
  EXPECT_EQ(a.lost_to.count("d-late"), 0u);
}

TEST(AdmissionTest, AnOlderIntentOvertakenByTheWinnerLosesEvenWithoutVotes) {
  record_set s("web", "prod");
  s.add_intent(intent("d-new", five), 20);
  for (auto h : {"a", "b", "c"}) vote(s, "", "d-new", h);
  // The older intent arrives late (its submitter was cut off): it can never run any more.
  s.add_intent(intent("d-old", five), 10);
  auto a = admit(s);
  EXPECT_EQ(a.chain, std::vector<std::string>{"d-new"});
  EXPECT_EQ(a.lost_to.at("d-old"), "d-new");
  EXPECT_FALSE(next_approval(s, a, "d").has_value());  // nobody votes for it
}

// Found by the simulator (seed 50): a node that has not seen the intent the other votes went
// to must not decide the split in favour of the only intent it knows.
TEST(AdmissionTest, VotesForAnUnseenIntentKeepTheSplitUndecided) {
  record_set s("web", "prod");
  s.add_intent(intent("d-1", {"a", "b", "c"}), 10);
  vote(s, "", "d-1", "a");
  vote(s, "", "d-2", "b");
  vote(s, "", "d-2", "c");
  EXPECT_TRUE(admit(s).chain.empty());
  s.add_intent(intent("d-2", {"a", "b", "c"}), 10);
  auto a = admit(s);
  EXPECT_EQ(a.chain, std::vector<std::string>{"d-2"});
  EXPECT_EQ(a.lost_to.at("d-1"), "d-2");
}

TEST(AdmissionTest, IntentWithoutVotesQueuesForTheNextParent) {
  record_set s("web", "prod");
  s.add_intent(intent("d-1", five), 10);
  s.add_intent(intent("d-2", five), 20);
  for (auto h : {"a", "b", "c"}) vote(s, "", "d-1", h);
  auto a = admit(s);
  EXPECT_EQ(a.chain, std::vector<std::string>{"d-1"});
  EXPECT_EQ(a.lost_to.count("d-2"), 0u);
  auto next = next_approval(s, a, "e");
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->parent, "d-1");
  EXPECT_EQ(next->child, "d-2");
  for (auto h : {"a", "b", "c"}) vote(s, "d-1", "d-2", h);
  EXPECT_EQ(admit(s).chain, (std::vector<std::string>{"d-1", "d-2"}));
}

TEST(AdmissionTest, NextApprovalPicksTheEarliestOpenIntentThatNamesTheHost) {
  record_set s("web", "prod");
  s.add_intent(intent("d-x", {"x", "y"}), 5);
  s.add_intent(intent("d-2", five), 20);
  s.add_intent(intent("d-1", five), 10);
  auto a = admit(s);
  EXPECT_EQ(next_approval(s, a, "a")->child, "d-1");
  EXPECT_EQ(next_approval(s, a, "x")->child, "d-x");
  EXPECT_FALSE(next_approval(s, a, "nobody").has_value());
}

TEST(AdmissionTest, EmptyTargetListNeverCompetes) {
  record_set s("web", "prod");
  s.add_intent(intent("d-0", {}), 1);
  auto a = admit(s);
  EXPECT_FALSE(next_approval(s, a, "a").has_value());
  EXPECT_TRUE(a.chain.empty());
}

TEST(AdmissionTest, LargeGroupsUseAFixedCommitteeOfTheTargetSet) {
  std::vector<std::string> many;
  for (int i = 0; i < 200; ++i) many.push_back("h" + std::to_string(i));
  auto in = intent("d-1", many);
  auto c1 = admission_committee(in);
  ASSERT_EQ(c1.size(), admission_committee_size);
  // Same target set in another order (another deployment id orders it differently): same
  // committee, so two intents' majorities intersect.
  auto reversed = in;
  std::reverse(reversed.targets.begin(), reversed.targets.end());
  reversed.deployment_id = "d-2";
  auto c2 = admission_committee(reversed);
  std::sort(c1.begin(), c1.end());
  std::sort(c2.begin(), c2.end());
  EXPECT_EQ(c1, c2);
  // Committee members' votes admit; others' do not count.
  record_set s("web", "prod");
  s.add_intent(in, 1);
  for (const auto& h : many) {
    if (std::find(c1.begin(), c1.end(), h) == c1.end()) vote(s, "", "d-1", h);
  }
  EXPECT_TRUE(admit(s).chain.empty());
  for (std::size_t i = 0; i < admission_committee_size / 2 + 1; ++i) vote(s, "", "d-1", c1[i]);
  EXPECT_EQ(admit(s).chain, std::vector<std::string>{"d-1"});
  EXPECT_FALSE(next_approval(s, admit(s), many[0]).has_value());
}

// The documented limit: intents planned over different membership views (different target
// sets) can both reach a majority of their own targets. The earliest wins everywhere it is
// seen with the other; a node that saw only one of them admits that one.
TEST(AdmissionTest, DifferentTargetSetsWithBothMajoritiesResolveToTheEarliest) {
  record_set s("web", "prod");
  s.add_intent(intent("d-1", {"a", "b", "c"}), 10);
  s.add_intent(intent("d-2", {"b", "c", "d"}), 11);
  vote(s, "", "d-1", "a");
  vote(s, "", "d-1", "b");
  vote(s, "", "d-2", "c");
  vote(s, "", "d-2", "d");
  auto a = admit(s);
  EXPECT_EQ(a.chain, std::vector<std::string>{"d-1"});
  EXPECT_EQ(a.lost_to.count("d-2"), 0u);  // newer: queued behind d-1
}

}  // namespace
}  // namespace meshdeploy::deploy::rollout

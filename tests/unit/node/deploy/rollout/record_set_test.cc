// record_set: idempotent, commutative merging of one group's deployment records.
#include "node/deploy/rollout/record_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <vector>

namespace meshdeploy::deploy::rollout {
namespace {

records::intent_payload intent(std::string id, std::vector<std::string> targets) {
  records::intent_payload p;
  p.deployment_id = std::move(id);
  p.app = "web";
  p.group = "prod";
  p.revision = "rev1";
  p.config = "OneAtATime";
  p.targets = std::move(targets);
  return p;
}

records::progress_payload progress(std::string id, std::string host, std::string phase) {
  return records::progress_payload{std::move(id), std::move(host), std::move(phase), {}};
}

// Every way a record can reach a node: a list of closures adding one record each.
std::vector<std::function<void(record_set&)>> all_records() {
  std::vector<std::function<void(record_set&)>> v;
  v.push_back([](record_set& s) { s.add_intent(intent("d-1", {"a", "b", "c"}), 100); });
  v.push_back([](record_set& s) { s.add_intent(intent("d-2", {"a", "b"}), 90); });
  v.push_back([](record_set& s) { s.add_approval({"web", "prod", "", "d-1", "a"}); });
  v.push_back([](record_set& s) { s.add_approval({"web", "prod", "", "d-2", "b"}); });
  // A host that (wrongly) signed two children for one parent: the smaller child is kept.
  v.push_back([](record_set& s) { s.add_approval({"web", "prod", "", "d-2", "c"}); });
  v.push_back([](record_set& s) { s.add_approval({"web", "prod", "", "d-1", "c"}); });
  v.push_back([](record_set& s) { s.add_progress(progress("d-1", "a", "entered"), 1); });
  v.push_back([](record_set& s) { s.add_progress(progress("d-1", "a", "resolved"), 1000000); });
  v.push_back([](record_set& s) { s.add_progress(progress("d-1", "b", "entered"), 1); });
  v.push_back([](record_set& s) { s.add_stop({"d-1", "web", "prod", "zz"}); });
  v.push_back([](record_set& s) { s.add_stop({"d-1", "web", "prod", "aa"}); });
  v.push_back([](record_set& s) { s.add_exclude({"d-1", "web", "prod", "c"}); });
  return v;
}

TEST(RecordSetTest, SameRecordsInAnyOrderGiveEqualSets) {
  auto adds = all_records();
  record_set reference("web", "prod");
  for (auto& f : adds) f(reference);
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> order(adds.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    record_set s("web", "prod");
    // Some records arrive twice.
    for (std::size_t i : order) {
      adds[i](s);
      if (rng() % 3 == 0) adds[i](s);
    }
    ASSERT_TRUE(s == reference) << "round " << round;
    ASSERT_EQ(s.digest(), reference.digest());
  }
  EXPECT_EQ(reference.progress("d-1", "a")->progress.phase, "resolved");
  EXPECT_EQ(reference.stop("d-1")->reason, "aa");
  EXPECT_EQ(reference.approvals().at("").at("c"), "d-1");
  EXPECT_EQ(reference.approval_conflicts().size(), 1u);
}

TEST(RecordSetTest, AddingTheSameRecordTwiceReportsNoChange) {
  record_set s("web", "prod");
  EXPECT_TRUE(s.add_intent(intent("d-1", {"a"}), 5));
  EXPECT_FALSE(s.add_intent(intent("d-1", {"a"}), 5));
  EXPECT_TRUE(s.add_progress(progress("d-1", "a", "entered"), 2));
  EXPECT_FALSE(s.add_progress(progress("d-1", "a", "entered"), 2));
  EXPECT_FALSE(s.add_progress(progress("d-1", "a", "entered"), 1));  // older
  EXPECT_TRUE(s.add_exclude({"d-1", "web", "prod", "a"}));
  EXPECT_FALSE(s.add_exclude({"d-1", "web", "prod", "a"}));
  EXPECT_EQ(s.size(), 3u);
}

TEST(RecordSetTest, RefusesRecordsOfOtherGroups) {
  record_set s("web", "prod");
  auto other = intent("d-9", {"a"});
  other.group = "staging";
  EXPECT_FALSE(s.add_intent(other, 1));
  EXPECT_FALSE(s.add_approval({"web", "staging", "", "d-9", "a"}));
  EXPECT_FALSE(s.add_stop({"d-9", "api", "prod", ""}));
  EXPECT_EQ(s.size(), 0u);
}

TEST(RecordSetTest, DifferentContentGivesDifferentDigest) {
  record_set a("web", "prod"), b("web", "prod");
  a.add_progress(progress("d-1", "a", "entered"), 1);
  b.add_progress(progress("d-1", "a", "failed"), 1);
  EXPECT_FALSE(a == b);
  EXPECT_NE(a.digest(), b.digest());
}

TEST(RecordSetTest, IntentsInOrderSortByCreateTimeThenId) {
  record_set s("web", "prod");
  s.add_intent(intent("d-b", {"a"}), 10);
  s.add_intent(intent("d-a", {"a"}), 10);
  s.add_intent(intent("d-c", {"a"}), 5);
  auto v = s.intents_in_order();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0]->intent.deployment_id, "d-c");
  EXPECT_EQ(v[1]->intent.deployment_id, "d-a");
  EXPECT_EQ(v[2]->intent.deployment_id, "d-b");
}

}  // namespace
}  // namespace meshdeploy::deploy::rollout

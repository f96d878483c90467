#include "node/paced_feed.h"

#include "node/records/payloads.h"

#include <gtest/gtest.h>

namespace meshdeploy::node {
namespace {

using namespace std::chrono_literals;
using time_point = paced_feed::clock::time_point;

const time_point t0{std::chrono::hours(1)};

records::record rec(const std::string& key) {
  records::record r;
  r.type = records::record_type::intent;
  r.key = key;
  return r;
}

std::vector<std::string> keys(const std::vector<records::record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.key);
  return out;
}

TEST(PacedFeedTest, QuietNodeDeliversUrgentRecordsAtOnce) {
  paced_feed f(0.5, 250ms, 300ms);
  auto a = f.offer(rec("a"), true, t0);
  EXPECT_EQ(keys(a.deliver), std::vector<std::string>{"a"});
  EXPECT_FALSE(a.arm);
  EXPECT_FALSE(a.cancel);
  EXPECT_EQ(f.held(), 0u);
}

TEST(PacedFeedTest, AfterWorkUrgentRecordsWaitAsLongAsTheWorkTookThenGoTogether) {
  paced_feed f(0.5, 250ms, 300ms);
  f.worked(t0, t0 + 20ms);
  EXPECT_EQ(f.rest_until(), t0 + 40ms);
  auto a = f.offer(rec("a"), true, t0 + 21ms);
  EXPECT_TRUE(a.deliver.empty());
  ASSERT_TRUE(a.arm);
  EXPECT_EQ(*a.arm, t0 + 40ms);
  auto b = f.offer(rec("b"), true, t0 + 30ms);
  EXPECT_TRUE(b.deliver.empty());
  EXPECT_FALSE(b.arm);  // already armed for then
  EXPECT_EQ(keys(f.take_due()), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.held(), 0u);
}

TEST(PacedFeedTest, LazyRecordsWaitUntilAnUrgentOneTakesThemAlong) {
  paced_feed f(0.5, 250ms, 300ms);
  auto a = f.offer(rec("a"), false, t0);
  EXPECT_TRUE(a.deliver.empty());
  ASSERT_TRUE(a.arm);
  EXPECT_EQ(*a.arm, t0 + 300ms);
  auto b = f.offer(rec("b"), false, t0 + 100ms);
  EXPECT_FALSE(b.arm);  // a later lazy record does not postpone the first one's delivery
  auto c = f.offer(rec("c"), true, t0 + 150ms);
  EXPECT_EQ(keys(c.deliver), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(c.cancel);
  EXPECT_EQ(f.held(), 0u);
}

TEST(PacedFeedTest, UrgentRecordWhileRestingBringsTheLazyDeadlineForward) {
  paced_feed f(0.5, 250ms, 300ms);
  (void)f.offer(rec("a"), false, t0);  // due at t0 + 300 ms
  f.worked(t0 + 10ms, t0 + 30ms);      // rest until t0 + 50 ms
  auto b = f.offer(rec("b"), true, t0 + 35ms);
  EXPECT_TRUE(b.deliver.empty());
  ASSERT_TRUE(b.arm);
  EXPECT_EQ(*b.arm, t0 + 50ms);
  EXPECT_EQ(keys(f.take_due()), (std::vector<std::string>{"a", "b"}));
}

TEST(PacedFeedTest, ShareSetsTheRestAndMaxRestCapsIt) {
  paced_feed quarter(0.25, 1s, 0ms);
  quarter.worked(t0, t0 + 10ms);
  EXPECT_EQ(quarter.rest_until(), t0 + 40ms);  // 10 ms of work, then 30 ms of rest

  paced_feed capped(0.5, 50ms, 0ms);
  capped.worked(t0, t0 + 200ms);
  EXPECT_EQ(capped.rest_until(), t0 + 250ms);

  paced_feed full(1.0, 1s, 0ms);  // share 1: never rests
  full.worked(t0, t0 + 100ms);
  EXPECT_FALSE(full.offer(rec("a"), true, t0 + 100ms).deliver.empty());
}

TEST(PacedFeedTest, RestsNeverShortenAndBackwardTimesAreIgnored) {
  paced_feed f(0.5, 250ms, 0ms);
  f.worked(t0, t0 + 100ms);          // rest until t0 + 200 ms
  f.worked(t0 + 100ms, t0 + 101ms);  // a short one after it does not cut the rest
  EXPECT_EQ(f.rest_until(), t0 + 200ms);
  f.worked(t0 + 10ms, t0);  // end before start: ignored
  EXPECT_EQ(f.rest_until(), t0 + 200ms);
}

TEST(PacedFeedTest, OnlyProgressInsideTheWindowIsLazy) {
  auto progress = [](const std::string& phase) {
    records::progress_payload p;
    p.deployment_id = "d-1";
    p.host = "h1";
    p.phase = phase;
    records::record r;
    r.type = records::record_type::progress;
    r.key = records::expected_key(p);
    r.payload = records::encode_payload(p);
    return r;
  };
  EXPECT_FALSE(urgent_for_deployer(progress("entered")));
  EXPECT_TRUE(urgent_for_deployer(progress("resolved")));
  EXPECT_TRUE(urgent_for_deployer(progress("failed")));
  EXPECT_TRUE(urgent_for_deployer(progress("skipped")));
  EXPECT_TRUE(urgent_for_deployer(rec("d-1")));  // an intent
  auto garbage = progress("entered");
  garbage.payload = {std::byte{0xc1}};
  EXPECT_TRUE(urgent_for_deployer(garbage));
}

}  // namespace
}  // namespace meshdeploy::node

#include "gossip/broadcast_queue.h"

#include <gtest/gtest.h>

#include <string>

namespace meshdeploy::gossip {
namespace {

std::vector<std::byte> bytes(const std::string& s) {
  std::vector<std::byte> out;
  for (char c : s) out.push_back(static_cast<std::byte>(c));
  return out;
}

std::vector<std::string> strings(const std::vector<broadcast_queue::shared_bytes>& v) {
  std::vector<std::string> out;
  for (const auto& b : v) {
    std::string s;
    for (auto x : *b) s.push_back(static_cast<char>(x));
    out.push_back(s);
  }
  return out;
}

TEST(BroadcastQueueTest, NewestFirstAmongEqualTransmits) {
  broadcast_queue q(4, 100);
  q.push("a", bytes("a1"));
  q.push("b", bytes("b1"));
  q.push("", bytes("c1"));
  EXPECT_EQ(strings(q.take(0, 1000, 10, 64)), (std::vector<std::string>{"c1", "b1", "a1"}));
}

TEST(BroadcastQueueTest, FewestTransmitsFirst) {
  broadcast_queue q(4, 100);
  q.push("a", bytes("a1"));
  EXPECT_EQ(strings(q.take(0, 1000, 10, 64)), (std::vector<std::string>{"a1"}));
  q.push("b", bytes("b1"));
  // a1 has one transmit, b1 none: b1 goes first even though a1 would also fit.
  EXPECT_EQ(strings(q.take(0, 2, 10, 64)), (std::vector<std::string>{"b1"}));
  // Now both have one transmit: newest first again.
  EXPECT_EQ(strings(q.take(0, 1000, 10, 64)), (std::vector<std::string>{"b1", "a1"}));
}

TEST(BroadcastQueueTest, NewerMessageWithSameKeyInvalidatesOlder) {
  broadcast_queue q(4, 100);
  q.push("node1", bytes("old"));
  q.push("node2", bytes("other"));
  q.push("node1", bytes("new"));
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(strings(q.take(0, 1000, 10, 64)), (std::vector<std::string>{"new", "other"}));
}

TEST(BroadcastQueueTest, EmptyKeyNeverInvalidates) {
  broadcast_queue q(4, 100);
  q.push("", bytes("x"));
  q.push("", bytes("y"));
  EXPECT_EQ(q.size(), 2u);
}

TEST(BroadcastQueueTest, DroppedAfterRetransmitLimit) {
  // mult 2, N=9 -> limit 2 * ceil(log10(10)) = 2; N=10 -> 4.
  for (auto [n, limit] : {std::pair<std::size_t, int>{9, 2}, {10, 4}, {100, 6}}) {
    broadcast_queue q(2, 100);
    q.push("k", bytes("m"));
    int sent = 0;
    for (int i = 0; i < 100 && !q.empty(); ++i)
      sent += static_cast<int>(q.take(0, 100, n, 64).size());
    EXPECT_EQ(sent, limit) << "n=" << n;
  }
}

TEST(BroadcastQueueTest, SkipsMessagesThatDoNotFitAndTakesSmallerOnes) {
  broadcast_queue q(4, 100);
  q.push("small", bytes("s"));
  q.push("big", bytes(std::string(50, 'b')));
  // Budget 20 with overhead 3: the big one (newest) does not fit, the small one does.
  EXPECT_EQ(strings(q.take(3, 20, 10, 64)), (std::vector<std::string>{"s"}));
  EXPECT_EQ(q.size(), 2u);
}

TEST(BroadcastQueueTest, BoundedSizeDropsMostTransmittedOldestFirst) {
  broadcast_queue q(10, 2);
  q.push("a", bytes("a"));
  (void)q.take(0, 100, 10, 64);  // a: 1 transmit
  q.push("b", bytes("b"));
  q.push("c", bytes("c"));  // over the bound: a (most transmitted) goes
  EXPECT_EQ(strings(q.take(0, 100, 10, 64)), (std::vector<std::string>{"c", "b"}));
  q.push("a", bytes("a2"));  // key "a" was forgotten cleanly
  EXPECT_EQ(q.size(), 2u);
}

TEST(BroadcastQueueTest, StopsLookingAfterMaxSkipsMessagesThatDoNotFit) {
  broadcast_queue q(4, 100);
  q.push("small", bytes("s"));  // the oldest, so the last in priority order
  for (std::size_t i = 0; i < broadcast_queue::max_skips; ++i) {
    q.push("big" + std::to_string(i), bytes(std::string(50, 'b')));
  }
  // Budget 20: max_skips big messages come first and do not fit; the pass stops there.
  EXPECT_TRUE(q.take(0, 20, 10, 64).empty());
  q.push("big-extra", bytes(std::string(50, 'b')));  // evens out nothing: still max_skips + 1
  EXPECT_TRUE(q.take(0, 20, 10, 64).empty());
  // With one misfit fewer in front, the small one is reached.
  broadcast_queue r(4, 100);
  r.push("small", bytes("s"));
  for (std::size_t i = 0; i + 1 < broadcast_queue::max_skips; ++i) {
    r.push("big" + std::to_string(i), bytes(std::string(50, 'b')));
  }
  EXPECT_EQ(strings(r.take(0, 20, 10, 64)), (std::vector<std::string>{"s"}));
}

TEST(BroadcastQueueTest, RequeuedMessagesKeepTheirKeys) {
  broadcast_queue q(4, 100);
  q.push("a", bytes("a1"));
  (void)q.take(0, 100, 10, 64);  // a1 requeued with one transmit
  q.push("a", bytes("a2"));      // must replace the requeued a1
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(strings(q.take(0, 100, 10, 64)), (std::vector<std::string>{"a2"}));
}

TEST(BroadcastQueueTest, TakesAtMostMaxMessages) {
  broadcast_queue q(4, 100);
  for (int i = 0; i < 10; ++i) q.push("k" + std::to_string(i), bytes("m"));
  EXPECT_EQ(q.take(0, 1000, 10, 3).size(), 3u);
  EXPECT_EQ(q.size(), 10u);
}

TEST(BroadcastQueueTest, TakenBytesOutliveTheirLastTransmit) {
  broadcast_queue q(1, 100);  // limit 1 * ceil(log10(2)) = 1: the first take removes it
  q.push("a", bytes("a1"));
  auto got = q.take(0, 100, 1, 64);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(strings(got), (std::vector<std::string>{"a1"}));
}

}  // namespace
}  // namespace meshdeploy::gossip

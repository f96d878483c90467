#include "node/mesh/connection_table.h"

#include <gtest/gtest.h>

namespace meshdeploy::mesh {
namespace {

using namespace std::chrono_literals;
using time_point = connection_table::clock::time_point;

class ConnectionTableTest : public ::testing::Test {
 protected:
  static connection_table::limits limits(std::size_t max) {
    return {max, std::chrono::seconds(30), std::chrono::seconds(10)};
  }
  time_point at(std::chrono::milliseconds ms) const { return t0_ + ms; }

  const time_point t0_{std::chrono::hours(1)};
};

TEST_F(ConnectionTableTest, OneEntryPerKeyFoundUntilRemoved) {
  connection_table t(limits(4));
  const auto a = t.add("10.0.0.1:7946", at(0ms));
  EXPECT_TRUE(a.evicted.empty());
  ASSERT_TRUE(t.find("10.0.0.1:7946"));
  EXPECT_EQ(*t.find("10.0.0.1:7946"), a.entry);
  EXPECT_FALSE(t.find("10.0.0.2:7946"));
  const auto b = t.add("10.0.0.2:7946", at(0ms));
  EXPECT_NE(a.entry, b.entry);
  EXPECT_EQ(t.size(), 2u);
  t.remove(a.entry);
  EXPECT_FALSE(t.find("10.0.0.1:7946"));
  t.remove(a.entry);  // twice: ignored
  EXPECT_EQ(t.size(), 1u);
  // A new entry under the old key gets a new id; the stale id stays unknown.
  const auto c = t.add("10.0.0.1:7946", at(1ms));
  EXPECT_NE(c.entry, a.entry);
  t.remove(a.entry);
  EXPECT_EQ(*t.find("10.0.0.1:7946"), c.entry);
}

TEST_F(ConnectionTableTest, FullTableEvictsLeastRecentlyActive) {
  connection_table t(limits(3));
  const auto a = t.add("a", at(0ms)).entry;
  const auto b = t.add("b", at(1ms)).entry;
  const auto c = t.add("c", at(2ms)).entry;
  t.touch(a, at(3ms));  // b is now the least recently active
  const auto d = t.add("d", at(4ms));
  ASSERT_EQ(d.evicted.size(), 1u);
  EXPECT_EQ(d.evicted[0], b);
  EXPECT_FALSE(t.find("b"));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.evictions(), 1u);
  const auto e = t.add("e", at(5ms));
  ASSERT_EQ(e.evicted.size(), 1u);
  EXPECT_EQ(e.evicted[0], c);
}

TEST_F(ConnectionTableTest, UnprotectedEntriesAreEvictedBeforeProtectedOnes) {
  connection_table t(limits(3));
  const auto a = t.add("a", at(0ms)).entry;
  const auto b = t.add("b", at(1ms)).entry;
  const auto c = t.add("c", at(2ms)).entry;
  t.set_protected(a, true);
  t.set_protected(b, true);
  // c is the most recent but the only unprotected one.
  auto d = t.add("d", at(3ms));
  ASSERT_EQ(d.evicted.size(), 1u);
  EXPECT_EQ(d.evicted[0], c);
  // All protected now except d: d goes next, even though a and b are older.
  auto e = t.add("e", at(4ms));
  ASSERT_EQ(e.evicted.size(), 1u);
  EXPECT_EQ(e.evicted[0], d.entry);
  // Everyone protected: the least recently active protected entry goes.
  t.set_protected(e.entry, true);
  t.touch(a, at(5ms));
  auto f = t.add("f", at(6ms));
  ASSERT_EQ(f.evicted.size(), 1u);
  EXPECT_EQ(f.evicted[0], b);
}

TEST_F(ConnectionTableTest, IdleEntriesExpireProtectedAfterIdleTimeoutOthersSooner) {
  connection_table t(limits(8));
  EXPECT_FALSE(t.next_expiry());
  const auto a = t.add("a", at(0ms)).entry;  // unprotected: 10 s
  const auto b = t.add("b", at(0ms)).entry;
  t.set_protected(b, true);  // protected: 30 s
  ASSERT_TRUE(t.next_expiry());
  EXPECT_EQ(*t.next_expiry(), at(10s));
  EXPECT_TRUE(t.expire(at(9999ms)).empty());
  auto gone = t.expire(at(10s));
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], a);
  EXPECT_EQ(*t.next_expiry(), at(30s));
  t.touch(b, at(20s));  // activity pushes the deadline
  EXPECT_TRUE(t.expire(at(49s)).empty());
  gone = t.expire(at(50s));
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], b);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.next_expiry());
}

TEST_F(ConnectionTableTest, UnknownIdsAreIgnoredAndLimitIsAtLeastOne) {
  connection_table t({0, 1s, 1s});
  EXPECT_EQ(t.config().max_entries, 1u);
  t.touch(42, at(0ms));
  t.set_protected(42, true);
  t.remove(42);
  const auto a = t.add("a", at(0ms)).entry;
  const auto b = t.add("b", at(1ms));
  ASSERT_EQ(b.evicted.size(), 1u);
  EXPECT_EQ(b.evicted[0], a);
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(ConnectionTableTest, BoundedUnderChurn) {
  connection_table t(limits(16));
  for (int i = 0; i < 1000; ++i) {
    auto r = t.add("k" + std::to_string(i), at(std::chrono::milliseconds(i)));
    if (i % 3 == 0) t.set_protected(r.entry, true);
    ASSERT_LE(t.size(), 16u);
  }
  EXPECT_EQ(t.evictions(), 1000u - 16u);
}

}  // namespace
}  // namespace meshdeploy::mesh

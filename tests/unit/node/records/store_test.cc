#include "node/records/store.h"

#include "node/records/errc.h"
#include "storage/db.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace meshdeploy::records {
namespace {

std::vector<std::byte> pack_strings(const std::vector<std::string>& fields) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> p(buf);
  p.pack_array(static_cast<std::uint32_t>(fields.size()));
  for (const auto& f : fields) p.pack(f);
  std::vector<std::byte> out(buf.size());
  std::memcpy(out.data(), buf.data(), buf.size());
  return out;
}

public_key key_of(std::uint8_t b) {
  public_key k{};
  k.fill(b);
  return k;
}

record make(record_type t, std::string key, std::uint64_t version = 1, std::uint8_t writer = 1,
            std::int64_t time_ms = 1000) {
  record r;
  r.type = t;
  r.key = std::move(key);
  r.version = version;
  r.writer = key_of(writer);
  r.time_ms = time_ms;
  r.payload = pack_strings({"p", std::to_string(version)});
  return r;
}

record intent(const std::string& id, const std::string& group, std::int64_t time_ms) {
  record r = make(record_type::intent, id, 1, 1, time_ms);
  r.payload = pack_strings({id, "app", group, "rev"});
  return r;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  void reopen() {
    store_.reset();
    db_.reset();
    auto db = storage::db::open({dir_.path() / "db", store::column_families()});
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(db).value();
    auto s = store::open(*db_);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(s).value();
  }

  put_outcome put(const record& r) {
    auto o = store_->put(r);
    EXPECT_TRUE(o) << o.error().message;
    return o ? o.value() : put_outcome::stale;
  }

  std::optional<record> get(record_type t, const std::string& key) {
    auto r = store_->get(t, key);
    EXPECT_TRUE(r) << r.error().message;
    return r ? r.value() : std::nullopt;
  }

  test::temp_dir dir_{"store-test"};
  std::unique_ptr<storage::db> db_;
  std::unique_ptr<store> store_;
};

TEST_F(StoreTest, ColumnFamiliesOnePerTypePlusHistoryAndTombstones) {
  const auto cfs = store::column_families();
  EXPECT_EQ(cfs.size(), max_record_type + 2u);
  EXPECT_NE(std::find(cfs.begin(), cfs.end(), "rec_grant"), cfs.end());
  EXPECT_NE(std::find(cfs.begin(), cfs.end(), "rec_grant_history"), cfs.end());
  EXPECT_NE(std::find(cfs.begin(), cfs.end(), "rec_host"), cfs.end());
}

TEST_F(StoreTest, PutStoresNewRecordAndGetReturnsIt) {
  const record r = make(record_type::application, "web");
  EXPECT_EQ(put(r), put_outcome::stored);
  EXPECT_EQ(get(record_type::application, "web"), r);
  EXPECT_EQ(get(record_type::application, "other"), std::nullopt);
  EXPECT_EQ(get(record_type::group, "web"), std::nullopt);
}

TEST_F(StoreTest, NewerVersionReplacesAndOlderOrEqualIsStale) {
  const record v1 = make(record_type::application, "web", 1);
  const record v2 = make(record_type::application, "web", 2);
  EXPECT_EQ(put(v1), put_outcome::stored);
  EXPECT_EQ(put(v2), put_outcome::replaced);
  EXPECT_EQ(put(v1), put_outcome::stale);
  EXPECT_EQ(put(v2), put_outcome::stale);
  EXPECT_EQ(get(record_type::application, "web"), v2);
}

TEST_F(StoreTest, EqualVersionsKeepTheSameRecordWhateverTheOrder) {
  record a = make(record_type::config, "c", 3);
  record b = a;
  b.time_ms += 1;  // a different record, same version (a misbehaving writer)
  const record& winner = supersedes(a, b) ? a : b;
  put(a);
  put(b);
  const auto first = get(record_type::config, "c");
  reopen();
  test::temp_dir other("store-test-2");
  auto db2 = storage::db::open({other.path(), store::column_families()});
  ASSERT_TRUE(db2);
  auto s2 = store::open(*db2.value());
  ASSERT_TRUE(s2);
  ASSERT_TRUE(s2.value()->put(b));
  ASSERT_TRUE(s2.value()->put(a));
  EXPECT_EQ(first, winner);
  EXPECT_EQ(s2.value()->get(record_type::config, "c").value(), winner);
  EXPECT_EQ(s2.value()->root_digest(), store_->root_digest());
}

TEST_F(StoreTest, SecondDifferentHostBindingIsRefusedWithConflict) {
  const record h1 = make(record_type::host, "web-1", 1, 7);
  const record h2 = make(record_type::host, "web-1", 1, 8);
  EXPECT_EQ(put(h1), put_outcome::stored);
  auto o = store_->put(h2);
  ASSERT_FALSE(o);
  EXPECT_EQ(o.error().code, make_error_code(errc::conflict));
  EXPECT_NE(o.error().message.find("web-1"), std::string::npos);
  EXPECT_EQ(store_->host_key("web-1"), key_of(7));
  EXPECT_EQ(store_->host_key("web-2"), std::nullopt);
  EXPECT_EQ(put(h1), put_outcome::stale);
}

TEST_F(StoreTest, GrantHistoryKeepsEveryVersionInOrderEvenOutOfOrderArrival) {
  const public_key op = key_of(9);
  const std::string k = to_hex(op);
  const record g1 = make(record_type::grant, k, 1, 2);
  const record g2 = make(record_type::grant, k, 2, 2);
  const record g3 = make(record_type::grant, k, 3, 2);
  EXPECT_EQ(put(g3), put_outcome::stored);
  EXPECT_EQ(put(g1), put_outcome::stale);  // not current, but kept in the history
  EXPECT_EQ(put(g2), put_outcome::stale);
  EXPECT_EQ(get(record_type::grant, k), g3);
  EXPECT_EQ(store_->grant_history(op), (std::vector<record>{g1, g2, g3}));
  EXPECT_TRUE(store_->grant_history(key_of(10)).empty());
  // The sync index has one entry per version.
  EXPECT_EQ(store_->index_size(), 3u);
  auto by_id = store_->get_by_id(sync_id(g1));
  ASSERT_TRUE(by_id);
  EXPECT_EQ(by_id.value(), g1);
}

TEST_F(StoreTest, ScanReturnsPrefixMatchesInKeyOrderAndCountCounts) {
  for (const char* k : {"b/2", "a/1", "b/1", "b", "c"}) put(make(record_type::progress, k));
  auto all = store_->scan(record_type::progress);
  ASSERT_TRUE(all);
  std::vector<std::string> keys;
  for (const auto& r : all.value()) keys.push_back(r.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a/1", "b", "b/1", "b/2", "c"}));
  auto bs = store_->scan(record_type::progress, "b/");
  ASSERT_TRUE(bs);
  ASSERT_EQ(bs.value().size(), 2u);
  EXPECT_EQ(bs.value()[0].key, "b/1");
  EXPECT_EQ(store_->count(record_type::progress).value(), 5u);
  EXPECT_EQ(store_->count(record_type::intent).value(), 0u);
}

TEST_F(StoreTest, RecordsAndIndexSurviveReopen) {
  put(make(record_type::application, "web"));
  put(make(record_type::grant, to_hex(key_of(3)), 2));
  put(make(record_type::intent, "d-1"));
  const auto root = store_->root_digest();
  const auto buckets = store_->bucket_digests();
  EXPECT_NE(root, 0u);
  reopen();
  EXPECT_EQ(store_->root_digest(), root);
  EXPECT_EQ(store_->bucket_digests(), buckets);
  EXPECT_EQ(store_->index_size(), 3u);
  EXPECT_TRUE(get(record_type::intent, "d-1"));
}

TEST_F(StoreTest, RootDigestDependsOnContentNotOrder) {
  test::temp_dir other("store-test-2");
  auto db2 = storage::db::open({other.path(), store::column_families()});
  ASSERT_TRUE(db2);
  auto s2 = store::open(*db2.value()).value();
  std::vector<record> rs;
  for (int i = 0; i < 20; ++i) rs.push_back(make(record_type::group, "g" + std::to_string(i)));
  for (const auto& r : rs) put(r);
  for (auto it = rs.rbegin(); it != rs.rend(); ++it) ASSERT_TRUE(s2->put(*it));
  EXPECT_EQ(store_->root_digest(), s2->root_digest());
  ASSERT_TRUE(s2->put(make(record_type::group, "g3", 2)));
  EXPECT_NE(store_->root_digest(), s2->root_digest());
  // Exactly one bucket differs.
  const auto a = store_->bucket_digests();
  const auto b = s2->bucket_digests();
  int differing = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differing += a[i] != b[i];
  EXPECT_EQ(differing, 1);
}

TEST_F(StoreTest, PruneDropsOldDeploymentsBeyondNewestPerGroupAndLeavesTombstones) {
  constexpr std::int64_t day = 24LL * 3600 * 1000;
  const std::int64_t now = 100 * day;
  // Group g1: five deployments, days 1..5 (all old). Group g2: one old deployment.
  for (int i = 1; i <= 5; ++i) {
    const std::string id = "d" + std::to_string(i);
    put(intent(id, "g1", i * day));
    put(make(record_type::progress, id + "/h1"));
    put(make(record_type::stop, id));
    record ap = make(record_type::approval, "app/g1/p" + std::to_string(i) + "/h1");
    ap.payload = pack_strings({"app", "g1", "p", id, "h1"});
    put(ap);
  }
  put(intent("e1", "g2", 1 * day));
  put(intent("fresh", "g1", now - day));       // young: kept whatever its rank
  put(make(record_type::progress, "d10/h1"));  // no intent: unrelated to d1
  const prune_options opts{30 * day, 2};
  auto stats = store_->prune(now, opts);
  ASSERT_TRUE(stats) << stats.error().message;
  // g1 newest two: fresh, d5; then d4..d1 are old and beyond: pruned. g2 keeps e1 (newest).
  EXPECT_EQ(stats.value().deployments, 4u);
  EXPECT_EQ(stats.value().records, 16u);
  EXPECT_FALSE(get(record_type::intent, "d1"));
  EXPECT_FALSE(get(record_type::progress, "d1/h1"));
  EXPECT_FALSE(get(record_type::stop, "d4"));
  EXPECT_FALSE(get(record_type::approval, "app/g1/p1/h1"));
  EXPECT_TRUE(get(record_type::intent, "d5"));
  EXPECT_TRUE(get(record_type::approval, "app/g1/p5/h1"));
  EXPECT_TRUE(get(record_type::intent, "e1"));
  EXPECT_TRUE(get(record_type::intent, "fresh"));
  EXPECT_TRUE(get(record_type::progress, "d10/h1"));
  // The tombstone keeps the record from coming back (anti-entropy replay).
  EXPECT_EQ(store_->tombstone(record_type::intent, "d1").value(), 1u);
  EXPECT_EQ(put(intent("d1", "g1", day)), put_outcome::stale);
  EXPECT_FALSE(get(record_type::intent, "d1"));
  // Progress under a higher version than the tombstone is accepted (the host wrote it later).
  EXPECT_EQ(put(make(record_type::progress, "d1/h1", 5)), put_outcome::stored);
  // Survives a reopen; pruning again changes nothing.
  const auto root = store_->root_digest();
  reopen();
  EXPECT_EQ(store_->root_digest(), root);
  EXPECT_EQ(store_->prune(now, opts).value().records, 0u);
}

TEST_F(StoreTest, ApplyTombstoneOnlyWhenNothingIsHeldAndTypeIsPrunable) {
  put(make(record_type::intent, "held"));
  EXPECT_FALSE(store_->apply_tombstone(record_type::intent, "held", 1).value());
  EXPECT_TRUE(get(record_type::intent, "held"));
  EXPECT_FALSE(store_->apply_tombstone(record_type::grant, "g", 1).value());
  EXPECT_TRUE(store_->apply_tombstone(record_type::intent, "gone", 1).value());
  EXPECT_FALSE(store_->apply_tombstone(record_type::intent, "gone", 1).value());
  EXPECT_EQ(put(make(record_type::intent, "gone")), put_outcome::stale);
  EXPECT_EQ(store_->index_size(), 2u);
}

TEST_F(StoreTest, ParseSyncIdRoundTripsAndRejectsGarbage) {
  const record g = make(record_type::grant, "abc", 4);
  auto p = parse_sync_id(sync_id(g));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type, static_cast<std::uint8_t>(record_type::grant));
  EXPECT_EQ(p->key, "abc");
  auto t = parse_sync_id(tombstone_id(record_type::stop, "d/1"));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->type, static_cast<std::uint8_t>(record_type::stop) | tombstone_flag);
  EXPECT_EQ(t->key, "d/1");
  EXPECT_FALSE(parse_sync_id(""));
  EXPECT_FALSE(parse_sync_id(std::string(1, '\x00') + "x"));
  EXPECT_FALSE(parse_sync_id(std::string(1, '\x02') + "unterminated"));
  EXPECT_FALSE(parse_sync_id(sync_id(g) + "x"));
}

TEST_F(StoreTest, ReadsRunConcurrentlyWithWrites) {
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<bool> bad{false};
  std::thread reader([&] {
    for (int i = 0; i < 100000 && !done; ++i) {
      auto r = store_->get(record_type::progress, "k");
      if (!r) bad = true;
      if (r && r.value() && r.value()->key != "k") bad = true;
      auto n = store_->count(record_type::progress);
      if (!n) bad = true;
      (void)store_->root_digest();
      ++reads;
    }
  });
  for (std::uint64_t v = 1; v <= 200; ++v) {
    ASSERT_TRUE(store_->put(make(record_type::progress, "k", v)));
  }
  done = true;
  reader.join();
  EXPECT_FALSE(bad);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(get(record_type::progress, "k")->version, 200u);
}

}  // namespace
}  // namespace meshdeploy::records

#include "node/security/audit.h"

#include "node/api/audit_routes.h"
#include "storage/db.h"
#include "storage/key.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <random>
#include <thread>

namespace meshdeploy::security {
namespace {

using nlohmann::json;

records::record make_record(std::string key, std::uint64_t version = 1, std::uint8_t writer = 7,
                            records::record_type type = records::record_type::application) {
  records::record r;
  r.type = type;
  r.key = std::move(key);
  r.version = version;
  r.writer.fill(writer);
  r.time_ms = 1'700'000'000'000;
  r.via = "node-a";
  r.payload = {std::byte{0x91}, std::byte{0xa3}, std::byte{'w'}, std::byte{'e'}, std::byte{'b'}};
  r.sig.fill(0x55);
  return r;
}

std::string seq_key(std::uint64_t seq) { return storage::key().u64(seq).bytes(); }

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }

  void open() {
    log_.reset();
    db_.reset();
    auto d = storage::db::open({dir_.path() / "db", {audit_log::column_family}});
    ASSERT_TRUE(d) << d.error().message;
    db_ = std::move(d).value();
    auto l = audit_log::open(*db_);
    ASSERT_TRUE(l) << l.error().message;
    log_ = std::move(l).value();
  }

  // Appends `n` entries for records "app-1".. at times 1000, 2000, ...
  std::vector<audit_entry> append_n(int n) {
    std::vector<audit_entry> out;
    for (int i = 1; i <= n; ++i) {
      auto e = log_->append(make_record("app-" + std::to_string(i)), "node-b", i * 1000,
                            i % 2 ? "alice" : "");
      EXPECT_TRUE(e) << e.error().message;
      if (e) out.push_back(e.value());
    }
    return out;
  }

  std::string raw(std::uint64_t seq) {
    auto v = db_->get(audit_log::column_family, seq_key(seq));
    EXPECT_TRUE(v && v.value()) << "no raw entry " << seq;
    return v && v.value() ? *v.value() : std::string();
  }
  void put_raw(std::string_view key, std::string_view value) {
    ASSERT_TRUE(db_->put(audit_log::column_family, key, value));
  }
  void erase_raw(std::uint64_t seq) {
    ASSERT_TRUE(db_->erase(audit_log::column_family, seq_key(seq)));
  }
  audit_verification verify() {
    auto v = log_->verify();
    EXPECT_TRUE(v) << v.error().message;
    return v ? v.value() : audit_verification{};
  }

  test::temp_dir dir_{"meshdeploy-audit"};
  std::unique_ptr<storage::db> db_;
  std::unique_ptr<audit_log> log_;
};

TEST_F(AuditTest, AppendsChainedEntriesStartingAtSeqOne) {
  const records::record r = make_record("web", 3, 9);
  auto first = log_->append(r, "node-b", 1234, "alice");
  ASSERT_TRUE(first) << first.error().message;
  const audit_entry& e = first.value();
  EXPECT_EQ(e.seq, 1u);
  EXPECT_EQ(e.time_ms, 1234);
  EXPECT_EQ(e.type, records::record_type::application);
  EXPECT_EQ(e.key, "web");
  EXPECT_EQ(e.version, 3u);
  EXPECT_EQ(e.writer, r.writer);
  EXPECT_EQ(e.writer_name, "alice");
  EXPECT_EQ(e.via, "node-a");
  EXPECT_EQ(e.accepted_by, "node-b");
  EXPECT_EQ(e.record_hash, records::hash_of(r));
  EXPECT_EQ(e.prev, audit_hash{});
  EXPECT_EQ(e.hash, compute_hash(e));

  auto second = log_->append(make_record("web", 4, 9), "node-b", 1235);
  ASSERT_TRUE(second);
  EXPECT_EQ(second.value().seq, 2u);
  EXPECT_EQ(second.value().prev, e.hash);
  EXPECT_NE(second.value().hash, e.hash);
  EXPECT_EQ(log_->last_seq(), 2u);
  EXPECT_EQ(log_->last_hash(), second.value().hash);

  // What is stored is exactly the entry, hash included.
  auto stored = decode_entry(raw(1));
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(stored.value(), e);
}

TEST_F(AuditTest, HashCoversEveryField) {
  audit_entry base = append_n(1).front();
  std::vector<audit_entry> variants(12, base);
  variants[0].seq += 1;
  variants[1].time_ms += 1;
  variants[2].type = records::record_type::group;
  variants[3].key += "x";
  variants[4].version += 1;
  variants[5].writer[31] ^= 1;
  variants[6].writer_name = "mallory";
  variants[7].via = "node-z";
  variants[8].accepted_by = "node-z";
  variants[9].record_hash[0] ^= 1;
  variants[10].prev[5] ^= 1;
  // Moving bytes between adjacent strings must change the hash too (length prefixes).
  variants[11].writer_name = base.writer_name + "n";
  variants[11].via = base.via.substr(1);
  for (std::size_t i = 0; i < variants.size(); ++i) {
    EXPECT_NE(compute_hash(variants[i]), base.hash) << "variant " << i;
  }
}

TEST_F(AuditTest, CanonicalBytesFollowTheDocumentedLayout) {
  audit_entry e;
  e.seq = 0x0102030405060708;
  e.time_ms = -1;
  e.type = records::record_type::intent;
  e.key = "k";
  e.version = 2;
  e.writer.fill(0xAA);
  e.writer_name = "";
  e.via = "v";
  e.accepted_by = "ab";
  e.record_hash.fill(0xBB);
  e.prev.fill(0xCC);
  std::vector<std::uint8_t> want = {1, 1, 2, 3, 4, 5, 6, 7, 8};
  want.insert(want.end(), 8, 0xFF);  // time_ms -1, two's complement
  want.push_back(6);                 // intent
  want.insert(want.end(), {0, 0, 0, 1, 'k'});
  want.insert(want.end(), {0, 0, 0, 0, 0, 0, 0, 2});
  want.insert(want.end(), 32, 0xAA);
  want.insert(want.end(), {0, 0, 0, 0});
  want.insert(want.end(), {0, 0, 0, 1, 'v'});
  want.insert(want.end(), {0, 0, 0, 2, 'a', 'b'});
  want.insert(want.end(), 32, 0xBB);
  want.insert(want.end(), 32, 0xCC);
  EXPECT_EQ(canonical_bytes(e), want);
  e.hash = compute_hash(e);
  auto round = decode_entry(encode_entry(e));
  ASSERT_TRUE(round) << round.error().message;
  EXPECT_EQ(round.value(), e);
}

TEST_F(AuditTest, DecodeRejectsTruncatedTrailingAndUnknownBytes) {
  const std::string good = encode_entry(append_n(1).front());
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(decode_entry(good.substr(0, n))) << "prefix of " << n << " bytes";
  }
  EXPECT_FALSE(decode_entry(good + "x"));
  std::string bad_format = good;
  bad_format[0] = 2;
  auto r = decode_entry(bad_format);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("format 2"), std::string::npos) << r.error().message;
  std::string huge_key = good;
  huge_key[18] = '\x7f';  // the key's length prefix (after format, seq, time, type)
  r = decode_entry(huge_key);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("field key"), std::string::npos) << r.error().message;
}

TEST_F(AuditTest, ListReturnsEntriesSinceATimeOldestFirst) {
  append_n(5);
  auto page = log_->list(3000, 100);
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(page.value().entries.size(), 3u);
  EXPECT_EQ(page.value().entries[0].seq, 3u);
  EXPECT_EQ(page.value().entries[2].seq, 5u);
  EXPECT_FALSE(page.value().truncated);
  EXPECT_EQ(page.value().unreadable, 0u);

  auto none = log_->list(5001, 100);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none.value().entries.empty());
}

TEST_F(AuditTest, ListWithALimitKeepsTheNewestAndSaysSo) {
  append_n(5);
  auto page = log_->list(0, 2);
  ASSERT_TRUE(page);
  ASSERT_EQ(page.value().entries.size(), 2u);
  EXPECT_EQ(page.value().entries[0].seq, 4u);
  EXPECT_EQ(page.value().entries[1].seq, 5u);
  EXPECT_TRUE(page.value().truncated);
  auto exact = log_->list(0, 5);
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact.value().entries.size(), 5u);
  EXPECT_FALSE(exact.value().truncated);
}

TEST_F(AuditTest, ListSkipsAndCountsUnreadableEntries) {
  append_n(3);
  put_raw(seq_key(2), "garbage");
  auto page = log_->list(0, 100);
  ASSERT_TRUE(page);
  ASSERT_EQ(page.value().entries.size(), 2u);
  EXPECT_EQ(page.value().entries[0].seq, 1u);
  EXPECT_EQ(page.value().entries[1].seq, 3u);
  EXPECT_EQ(page.value().unreadable, 1u);
}

TEST_F(AuditTest, ResumesSeqAndPrevAfterReopen) {
  const auto before = append_n(3);
  open();
  EXPECT_EQ(log_->last_seq(), 3u);
  EXPECT_EQ(log_->last_hash(), before.back().hash);
  auto next = log_->append(make_record("after-restart"), "node-b", 9000);
  ASSERT_TRUE(next);
  EXPECT_EQ(next.value().seq, 4u);
  EXPECT_EQ(next.value().prev, before.back().hash);
  const auto v = verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.entries_checked, 4u);
  EXPECT_EQ(v.head_seq, 4u);
  EXPECT_EQ(v.head_hash, next.value().hash);
}

TEST_F(AuditTest, OpenFailsWithoutTheColumnFamily) {
  log_.reset();
  db_.reset();
  auto d = storage::db::open({dir_.path() / "other", {}});
  ASSERT_TRUE(d);
  auto l = audit_log::open(*d.value());
  ASSERT_FALSE(l);
  EXPECT_NE(l.error().message.find("'audit'"), std::string::npos) << l.error().message;
}

TEST_F(AuditTest, VerifyPassesOnEmptyAndIntactChains) {
  auto v = verify();
  EXPECT_TRUE(v.ok);
  EXPECT_EQ(v.entries_checked, 0u);
  EXPECT_EQ(v.head_hash, audit_hash{});
  const auto entries = append_n(10);
  v = verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.entries_checked, 10u);
  EXPECT_EQ(v.head_seq, 10u);
  EXPECT_EQ(v.head_hash, entries.back().hash);
}

TEST_F(AuditTest, VerifyDetectsAModifiedEntry) {
  append_n(5);
  auto e = decode_entry(raw(3)).value();
  e.writer_name = "someone-else";  // stored hash left as it was
  put_raw(seq_key(3), encode_entry(e));
  const auto v = verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken, audit_break::hash_mismatch);
  EXPECT_EQ(v.first_broken_seq, 3u);
  EXPECT_EQ(v.entries_checked, 3u);
  EXPECT_EQ(v.head_seq, 2u);
  EXPECT_NE(v.reason.find("entry 3"), std::string::npos) << v.reason;
}

TEST_F(AuditTest, VerifyDetectsAModifiedEntryWhoseHashWasRecomputed) {
  append_n(5);
  auto e = decode_entry(raw(3)).value();
  e.key = "covered-up";
  e.hash = compute_hash(e);
  put_raw(seq_key(3), encode_entry(e));
  const auto v = verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken, audit_break::prev_mismatch);
  EXPECT_EQ(v.first_broken_seq, 4u);  // entry 3 is self-consistent; 4 no longer follows it
}

TEST_F(AuditTest, VerifyDetectsADeletedEntryAsAGap) {
  append_n(5);
  erase_raw(3);
  const auto v = verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken, audit_break::seq_gap);
  EXPECT_EQ(v.first_broken_seq, 3u);
  EXPECT_NE(v.reason.find("entry 3 is missing"), std::string::npos) << v.reason;
}

TEST_F(AuditTest, VerifyDetectsADeletedFirstEntry) {
  append_n(3);
  erase_raw(1);
  const auto v = verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken, audit_break::seq_gap);
  EXPECT_EQ(v.first_broken_seq, 1u);
}

TEST_F(AuditTest, VerifyDetectsTheNewestEntriesRemovedWhileRunning) {
  append_n(5);
  erase_raw(5);
  erase_raw(4);
  const auto v = verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken, audit_break::truncated);
  EXPECT_EQ(v.first_broken_seq, 4u);
  EXPECT_EQ(v.head_seq, 3u);
}

TEST_F(AuditTest, VerifyDetectsARewrittenNewestEntryWhileRunning) {
  append_n(3);
  auto e = decode_entry(raw(3)).value();
  e.key = "covered-up";
  e.hash = compute_hash(e);  // self-consistent, and nothing follows it
  put_raw(seq_key(3), encode_entry(e));
  const auto v = verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken, audit_break::hash_mismatch);
  EXPECT_EQ(v.first_broken_seq, 3u);
}

TEST_F(AuditTest, VerifyDetectsReorderedEntries) {
  append_n(5);
  const std::string two = raw(2), three = raw(3);
  put_raw(seq_key(2), three);
  put_raw(seq_key(3), two);
  const auto v = verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken, audit_break::seq_mismatch);
  EXPECT_EQ(v.first_broken_seq, 2u);
}

TEST_F(AuditTest, VerifyDetectsReorderedEntriesRenumberedAndRehashed) {
  append_n(5);
  auto two = decode_entry(raw(2)).value();
  auto three = decode_entry(raw(3)).value();
  std::swap(two.seq, three.seq);
  two.hash = compute_hash(two);
  three.hash = compute_hash(three);
  put_raw(seq_key(2), encode_entry(three));
  put_raw(seq_key(3), encode_entry(two));
  const auto v = verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken, audit_break::prev_mismatch);
  // Each moved entry is self-consistent, but the one now at 2 names entry 2's old hash as prev.
  EXPECT_EQ(v.first_broken_seq, 2u);
}

TEST_F(AuditTest, ConcurrentAppendsFormOneChain) {
  constexpr int threads = 4, per_thread = 25;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([this, t] {
      for (int i = 0; i < per_thread; ++i) {
        auto e = log_->append(make_record("t" + std::to_string(t) + "-" + std::to_string(i)),
                              "node-b", 1000 + i);
        EXPECT_TRUE(e);
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(log_->last_seq(), static_cast<std::uint64_t>(threads * per_thread));
  const auto v = verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.entries_checked, static_cast<std::uint64_t>(threads * per_thread));
}

// Random damage to the stored log: verify always reports a broken chain, and
// verify, list, decode and reopening never crash. The log is restored after each round.
TEST_F(AuditTest, RandomCorruptionIsDetectedAndNeverCrashes) {
  constexpr std::uint64_t n = 8;
  append_n(static_cast<int>(n));
  std::map<std::string, std::string> original;
  for (std::uint64_t s = 1; s <= n; ++s) original[seq_key(s)] = raw(s);

  std::mt19937_64 rng(20240601);
  auto pick_seq = [&] { return std::uniform_int_distribution<std::uint64_t>(1, n)(rng); };
  auto random_bytes = [&](std::size_t len) {
    std::string s(len, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  };
  for (int round = 0; round < 300; ++round) {
    const int kind = static_cast<int>(rng() % 7);
    const std::uint64_t s = pick_seq();
    std::string v = original[seq_key(s)];
    switch (kind) {
      case 0: {  // flip bits in one byte
        const std::size_t at = rng() % v.size();
        v[at] = static_cast<char>(v[at] ^ static_cast<char>(1 + rng() % 255));
        put_raw(seq_key(s), v);
        break;
      }
      case 1:  // truncate
        put_raw(seq_key(s), v.substr(0, rng() % v.size()));
        break;
      case 2:  // extend
        put_raw(seq_key(s), v + random_bytes(1 + rng() % 8));
        break;
      case 3:  // delete
        erase_raw(s);
        break;
      case 4: {  // swap with another entry
        const std::uint64_t other = s % n + 1;
        put_raw(seq_key(s), original[seq_key(other)]);
        put_raw(seq_key(other), v);
        break;
      }
      case 5:  // a foreign key of another length
        put_raw(random_bytes(rng() % 2 ? 1 + rng() % 7 : 9 + rng() % 8), v);
        break;
      default:  // random bytes in place of an entry
        put_raw(seq_key(s), random_bytes(rng() % 300));
        break;
    }
    const auto ver = verify();
    EXPECT_FALSE(ver.ok) << "round " << round << " kind " << kind << " seq " << s;
    // A foreign key sorting after the last entry breaks the chain at n + 1.
    EXPECT_GE(ver.first_broken_seq, 1u) << "round " << round;
    EXPECT_LE(ver.first_broken_seq, n + 1) << "round " << round;
    EXPECT_FALSE(ver.reason.empty());
    ASSERT_TRUE(log_->list(0, 100));
    auto reopened = audit_log::open(*db_);  // read-only use: resuming must not crash
    ASSERT_TRUE(reopened);

    // Restore: drop every key, put the originals back.
    storage::write_batch batch;
    ASSERT_TRUE(db_->scan(audit_log::column_family, {}, [&](std::string_view k, std::string_view) {
      batch.erase(audit_log::column_family, k);
      return true;
    }));
    for (const auto& [k, val] : original) batch.put(audit_log::column_family, k, val);
    ASSERT_TRUE(db_->write(std::move(batch)));
    ASSERT_TRUE(verify().ok) << "round " << round << " not restored";
  }
}

// --- HTTP routes ------------------------------------------------------------------------------

api::api_response call(const api::router::route_handler& h, std::string method,
                       std::string target) {
  auto r = h(api::api_request{std::move(method), std::move(target), {}, {}});
  EXPECT_TRUE(r.has_value());
  return r ? *r : api::api_response{};
}

TEST_F(AuditTest, RouteListsEntriesAsDocumented) {
  append_n(3);
  const auto h = api::audit_routes(*log_);
  const auto res = call(h, "GET", "/v1/audit?since=1970-01-01T00:00:02Z");
  ASSERT_EQ(res.status, 200u) << res.body;
  const json j = json::parse(res.body);
  ASSERT_EQ(j["entries"].size(), 2u);
  const json& e = j["entries"][0];
  EXPECT_EQ(e["seq"], 2);
  EXPECT_EQ(e["time"], "1970-01-01T00:00:02.000Z");
  EXPECT_EQ(e["timeMs"], 2000);
  EXPECT_EQ(e["type"], "application");
  EXPECT_EQ(e["key"], "app-2");
  EXPECT_EQ(e["version"], 1);
  EXPECT_EQ(e["writer"], records::to_hex(make_record("x").writer));
  EXPECT_EQ(e["writerName"], "");
  EXPECT_EQ(e["via"], "node-a");
  EXPECT_EQ(e["acceptedBy"], "node-b");
  EXPECT_EQ(e["recordHash"], records::to_hex(records::hash_of(make_record("app-2"))));
  EXPECT_EQ(e["prev"], records::to_hex(decode_entry(raw(1)).value().hash));
  EXPECT_EQ(e["hash"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["entries"][1]["prev"], e["hash"]);
  EXPECT_EQ(j["truncated"], false);
  EXPECT_EQ(j["unreadable"], 0);

  const json ms = json::parse(call(h, "GET", "/v1/audit?since=3000&limit=1").body);
  ASSERT_EQ(ms["entries"].size(), 1u);
  EXPECT_EQ(ms["entries"][0]["seq"], 3);
  const json lim = json::parse(call(h, "GET", "/v1/audit?limit=1").body);
  EXPECT_EQ(lim["entries"][0]["seq"], 3);
  EXPECT_EQ(lim["truncated"], true);
}

TEST_F(AuditTest, RouteRejectsBadParametersAndMethods) {
  const auto h = api::audit_routes(*log_);
  for (const char* target : {"/v1/audit?since=yesterday", "/v1/audit?since=", "/v1/audit?limit=0",
                             "/v1/audit?limit=10001", "/v1/audit?limit=5x", "/v1/audit?limit=-1"}) {
    const auto res = call(h, "GET", target);
    EXPECT_EQ(res.status, 400u) << target;
    EXPECT_NE(res.body.find("InvalidArgument"), std::string::npos) << res.body;
  }
  EXPECT_NE(call(h, "GET", "/v1/audit?limit=0").body.find("limit '0'"), std::string::npos);
  EXPECT_EQ(call(h, "POST", "/v1/audit").status, 405u);
  EXPECT_EQ(call(h, "DELETE", "/v1/audit/verify").status, 405u);
  EXPECT_FALSE(h(api::api_request{"GET", "/v1/auditx", {}, {}}).has_value());
  EXPECT_FALSE(h(api::api_request{"GET", "/v1/deployments", {}, {}}).has_value());
}

TEST_F(AuditTest, RouteVerifyReportsTheFirstBrokenLink) {
  append_n(4);
  const auto h = api::audit_routes(*log_);
  json j = json::parse(call(h, "GET", "/v1/audit/verify").body);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["entriesChecked"], 4);
  EXPECT_EQ(j["headSeq"], 4);
  EXPECT_EQ(j["headHash"], records::to_hex(log_->last_hash()));
  EXPECT_FALSE(j.contains("firstBrokenSeq"));

  erase_raw(2);
  j = json::parse(call(h, "GET", "/v1/audit/verify").body);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["firstBrokenSeq"], 2);
  EXPECT_EQ(j["break"], "gap in seq");
  EXPECT_EQ(j["headSeq"], 1);
  EXPECT_NE(j["reason"].get<std::string>().find("entry 2 is missing"), std::string::npos);
}

TEST(AuditSinceTest, ParsesMillisecondsAndRfc3339) {
  EXPECT_EQ(api::parse_since("0").value(), 0);
  EXPECT_EQ(api::parse_since("1700000000123").value(), 1700000000123);
  EXPECT_EQ(api::parse_since("1970-01-01T00:00:01Z").value(), 1000);
  EXPECT_EQ(api::parse_since("2024-02-29T12:00:00Z").value(), 1709208000000);
  EXPECT_EQ(api::parse_since("2024-02-29t12:00:00.5z").value(), 1709208000500);
  EXPECT_EQ(api::parse_since("2024-02-29T12:00:00.123999Z").value(), 1709208000123);
  EXPECT_EQ(api::parse_since("2024-02-29T13:30:00+01:30").value(), 1709208000000);
  EXPECT_EQ(api::parse_since("2024-02-29T13:30:00 01:30").value(), 1709208000000);
  EXPECT_EQ(api::parse_since("2024-02-29T10:00:00-02:00").value(), 1709208000000);
  EXPECT_EQ(api::parse_since("1969-12-31T23:59:59Z").value(), -1000);
}

TEST(AuditSinceTest, RejectsWhatIsNotATime) {
  for (const char* s :
       {"", "yesterday", "2024-01-01", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
        "2024-01-01T24:00:00Z", "2024-01-01T00:00:00", "2024-01-01T00:00:00Zjunk",
        "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00+0100", "99999999999999999999", "-5"}) {
    auto r = api::parse_since(s);
    EXPECT_FALSE(r) << s;
    if (!r) {
      EXPECT_NE(r.error().message.find("since"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace meshdeploy::security

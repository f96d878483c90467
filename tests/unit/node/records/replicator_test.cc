#include "node/records/replicator.h"

#include "node/records/errc.h"
#include "storage/db.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace meshdeploy::records {
namespace {

using namespace std::chrono_literals;

constexpr std::uint8_t admin = 1;

public_key key_of(std::uint8_t b) {
  public_key k{};
  k.fill(b);
  return k;
}

// Records "signed" for the fake verifier: sig[0] == 0xAA is valid, anything else is a bad
// signature. Non-grant records need a stored grant for their writer (else unknown_writer).
record make(record_type t, std::string key, std::uint64_t version = 1, std::uint8_t writer = 2,
            std::size_t payload_bytes = 8) {
  record r;
  r.type = t;
  r.key = std::move(key);
  r.version = version;
  r.writer = key_of(writer);
  r.payload.assign(payload_bytes, std::byte{static_cast<unsigned char>(version)});
  r.sig[0] = 0xAA;
  return r;
}

record grant_for(std::uint8_t op, std::uint64_t version = 1) {
  return make(record_type::grant, to_hex(key_of(op)), version, admin);
}

struct message {
  std::string from;
  std::string to;
  std::vector<std::byte> bytes;
};

class ReplicatorTest : public ::testing::Test {
 protected:
  struct node {
    std::string name;
    std::unique_ptr<test::temp_dir> dir;
    std::unique_ptr<storage::db> db;
    std::unique_ptr<store> st;
    std::unique_ptr<replicator> rep;
    std::vector<record> stored;  // from set_on_stored
  };

  node& add_node(const std::string& name, replicator_config cfg = {}) {
    auto n = std::make_unique<node>();
    n->name = name;
    n->dir = std::make_unique<test::temp_dir>("replicator-test");
    n->db = storage::db::open({n->dir->path(), store::column_families()}).value();
    n->st = store::open(*n->db, storage::durability::buffered).value();
    node* self = n.get();
    replicator_env env;
    env.peers = [this, name] {
      std::vector<std::string> out;
      for (const auto& [other, _] : nodes_) {
        if (other != name) out.push_back(other);
      }
      return out;
    };
    env.send = [this, name](const std::string& peer, std::vector<std::byte> bytes) {
      queue_.push_back({name, peer, std::move(bytes)});
    };
    env.verify = [self](const record& r) -> result<void> {
      if (r.sig[0] != 0xAA) return make_error(errc::bad_signature, "bad signature on " + r.key);
      if (r.type == record_type::grant) return ok();
      if (self->st->grant_history(r.writer).empty()) {
        return make_error(errc::unknown_writer, "no grant for " + r.key);
      }
      return ok();
    };
    n->rep = std::make_unique<replicator>(*n->st, std::move(env), cfg, seed_++);
    n->rep->set_on_stored([self](const record& r) { self->stored.push_back(r); });
    auto& ref = *n;
    nodes_[name] = std::move(n);
    return ref;
  }

  // Delivers queued messages (and what they cause) until the network is quiet.
  std::size_t deliver_all() {
    std::size_t delivered = 0;
    for (int i = 0; i < 100'000 && !queue_.empty(); ++i) {
      message m = std::move(queue_.front());
      queue_.pop_front();
      auto it = nodes_.find(m.to);
      if (it == nodes_.end()) continue;
      it->second->rep->on_message(m.from, m.bytes, now_);
      ++delivered;
    }
    EXPECT_TRUE(queue_.empty());
    return delivered;
  }

  // Makes `a` run one anti-entropy round (with its single peer when there are two nodes).
  void sync(node& a) {
    if (a.rep->next_deadline() == time_point::min()) a.rep->on_tick(now_);
    now_ = std::max(now_, a.rep->next_deadline());
    a.rep->on_tick(now_);
    deliver_all();
  }

  std::vector<record> all(node& n, record_type t) { return n.st->scan(t).value(); }

  std::map<std::string, std::unique_ptr<node>> nodes_;
  std::deque<message> queue_;
  time_point now_{};
  std::uint64_t seed_ = 1;
};

TEST_F(ReplicatorTest, PublishStoresAndPushesToFanoutRandomPeersAtOnce) {
  auto& a = add_node("a");
  for (int i = 0; i < 5; ++i) add_node("p" + std::to_string(i));
  ASSERT_TRUE(a.rep->publish(grant_for(2), now_));
  EXPECT_EQ(queue_.size(), 3u);
  std::set<std::string> targets;
  for (const auto& m : queue_) targets.insert(m.to);
  EXPECT_EQ(targets.size(), 3u);
  EXPECT_EQ(a.stored.size(), 1u);
  EXPECT_EQ(a.rep->stats().stored, 1u);
  // Epidemic: everyone gets it through forwarding; each stores it exactly once.
  deliver_all();
  for (auto& [name, n] : nodes_) {
    EXPECT_EQ(n->st->get(record_type::grant, to_hex(key_of(2))).value(), grant_for(2)) << name;
    EXPECT_EQ(n->stored.size(), 1u) << name;
  }
}

TEST_F(ReplicatorTest, AdaptiveFanoutGrowsWithTheLogOfTheClusterSize) {
  replicator_config cfg;
  cfg.adaptive_fanout = true;
  auto& a = add_node("a", cfg);
  for (int i = 0; i < 30; ++i) add_node("p" + std::to_string(i));
  ASSERT_TRUE(a.rep->publish(grant_for(2), now_));
  EXPECT_EQ(queue_.size(), 6u);  // ceil(ln(30 + 1)) + 2
}

TEST_F(ReplicatorTest, PublishOfStaleRecordReturnsFalseAndSendsNothing) {
  auto& a = add_node("a");
  add_node("b");
  ASSERT_TRUE(a.rep->publish(grant_for(2, 2), now_).value());
  queue_.clear();
  auto again = a.rep->publish(grant_for(2, 2), now_);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again.value());
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(a.rep->stats().stale, 1u);
}

TEST_F(ReplicatorTest, PublishReturnsTheVerifyError) {
  auto& a = add_node("a");
  add_node("b");
  auto r = a.rep->publish(make(record_type::application, "web"), now_);  // no grant for writer 2
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::unknown_writer));
  record bad = grant_for(2);
  bad.sig[0] = 0;
  r = a.rep->publish(bad, now_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::bad_signature));
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(a.rep->stats().pending, 0u);
}

TEST_F(ReplicatorTest, ReceivedNewRecordIsForwardedButNotBackToTheSender) {
  add_node("a");
  auto& b = add_node("b");
  push_msg m;
  m.records.push_back(encode(grant_for(2)));
  b.rep->on_message("a", encode_sync_message(m), now_);
  EXPECT_EQ(b.stored.size(), 1u);
  EXPECT_TRUE(queue_.empty());  // the only other peer is the sender
  add_node("c");
  m.records = {encode(grant_for(3))};
  b.rep->on_message("a", encode_sync_message(m), now_);
  ASSERT_EQ(queue_.size(), 1u);
  EXPECT_EQ(queue_.front().to, "c");
}

TEST_F(ReplicatorTest, BatchForwardingSendsOnePushPerPeerPerBurstAndSkipsTheSenders) {
  replicator_config cfg;
  cfg.fanout = 3;
  cfg.batch_forwarding = true;
  auto& b = add_node("b", cfg);
  for (const char* p : {"a1", "a2", "c1", "c2", "c3", "c4"}) add_node(p);
  // A burst: two messages from two peers, three new records in all.
  push_msg m1, m2;
  m1.records = {encode(grant_for(2)), encode(grant_for(3))};
  m2.records = {encode(grant_for(4))};
  b.rep->on_message("a1", encode_sync_message(m1), now_);
  b.rep->on_message("a2", encode_sync_message(m2), now_);
  EXPECT_EQ(b.stored.size(), 3u);
  EXPECT_TRUE(queue_.empty());  // nothing goes out before the flush
  EXPECT_TRUE(b.rep->forwarding_pending());
  b.rep->flush_forwarding();
  EXPECT_FALSE(b.rep->forwarding_pending());
  ASSERT_EQ(queue_.size(), 3u);  // one push per fanout peer, none to a1 or a2
  for (const auto& q : queue_) {
    EXPECT_TRUE(q.to.starts_with("c")) << q.to;
    auto decoded = decode_sync_message(q.bytes);
    ASSERT_TRUE(decoded);
    ASSERT_TRUE(std::holds_alternative<push_msg>(decoded.value()));
    EXPECT_EQ(std::get<push_msg>(decoded.value()).records.size(), 3u);
  }
  // A stale burst leaves nothing to forward; a flush then sends nothing.
  queue_.clear();
  b.rep->on_message("a1", encode_sync_message(m1), now_);
  EXPECT_FALSE(b.rep->forwarding_pending());
  b.rep->flush_forwarding();
  EXPECT_TRUE(queue_.empty());
}

TEST_F(ReplicatorTest, CopiesOfRecentRecordsAreDroppedByHashAndTheMemoryIsBounded) {
  replicator_config cfg;
  cfg.recent_capacity = 2;
  add_node("a");
  auto& b = add_node("b", cfg);
  auto push = [&](std::vector<record> rs) {
    push_msg m;
    for (const auto& r : rs) m.records.push_back(encode(r));
    b.rep->on_message("a", encode_sync_message(m), now_);
  };
  push({grant_for(2), grant_for(3)});
  EXPECT_EQ(b.rep->stats().stored, 2u);
  push({grant_for(2), grant_for(3)});  // both remembered
  EXPECT_EQ(b.rep->stats().stale, 2u);
  EXPECT_EQ(b.rep->stats().stale_recent, 2u);
  push({grant_for(4)});  // evicts grant 2's hash
  push({grant_for(2)});  // still stale, found by the store this time
  EXPECT_EQ(b.rep->stats().stale, 3u);
  EXPECT_EQ(b.rep->stats().stale_recent, 2u);
  // A newer version is new bytes: stored, never mistaken for its predecessor.
  push({grant_for(3, 2)});
  EXPECT_EQ(b.st->get(record_type::grant, to_hex(key_of(3))).value(), grant_for(3, 2));
  // A rejected record is not remembered: a valid one with other bytes is still judged.
  record bad = grant_for(5);
  bad.sig[0] = 0;
  push({bad});
  push({bad});
  EXPECT_EQ(b.rep->stats().rejected_by_reason.at("bad_signature"), 2u);
}

TEST_F(ReplicatorTest, ReplaysChangeNothingAndAreNotForwarded) {
  add_node("a");
  auto& b = add_node("b");
  add_node("c");
  ASSERT_TRUE(b.st->put(grant_for(2)));
  push_msg m;
  m.records = {encode(make(record_type::config, "c", 3))};
  const auto bytes = encode_sync_message(m);
  b.rep->on_message("a", bytes, now_);
  ASSERT_EQ(b.stored.size(), 1u);
  queue_.clear();
  const auto root = b.st->root_digest();
  for (int i = 0; i < 3; ++i) b.rep->on_message("a", bytes, now_);
  m.records = {encode(make(record_type::config, "c", 2))};  // older
  b.rep->on_message("a", encode_sync_message(m), now_);
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(b.st->root_digest(), root);
  EXPECT_EQ(b.stored.size(), 1u);
  EXPECT_EQ(b.rep->stats().received, 5u);
  EXPECT_EQ(b.rep->stats().stale, 4u);
  EXPECT_EQ(b.st->get(record_type::config, "c").value()->version, 3u);
}

TEST_F(ReplicatorTest, InvalidRecordsAreDroppedAndCountedByReason) {
  add_node("a");
  auto& b = add_node("b");
  push_msg m;
  record bad = grant_for(2);
  bad.sig[0] = 1;
  m.records = {encode(bad), std::vector<std::byte>{std::byte{0xc1}}};
  b.rep->on_message("a", encode_sync_message(m), now_);
  b.rep->on_message("a", std::vector<std::byte>{std::byte{1}, std::byte{2}}, now_);
  const auto& why = b.rep->stats().rejected_by_reason;
  EXPECT_EQ(why.at("bad_signature"), 1u);
  EXPECT_EQ(why.at("malformed"), 1u);
  EXPECT_EQ(why.at("message"), 1u);
  EXPECT_EQ(b.st->index_size(), 0u);
}

TEST_F(ReplicatorTest, UnknownWriterWaitsPendingUntilItsGrantIsStored) {
  add_node("a");
  auto& b = add_node("b");
  add_node("c");
  push_msg m;
  m.records = {encode(make(record_type::application, "web")),
               encode(make(record_type::group, "web/prod"))};
  b.rep->on_message("a", encode_sync_message(m), now_);
  EXPECT_EQ(b.rep->stats().pending, 2u);
  EXPECT_TRUE(b.stored.empty());
  EXPECT_TRUE(queue_.empty());
  m.records = {encode(grant_for(2))};
  b.rep->on_message("a", encode_sync_message(m), now_);
  EXPECT_EQ(b.rep->stats().pending, 0u);
  ASSERT_EQ(b.stored.size(), 3u);
  EXPECT_EQ(b.stored[0].type, record_type::grant);
  EXPECT_TRUE(b.st->get(record_type::group, "web/prod").value());
  // All three are forwarded in one message.
  ASSERT_EQ(queue_.size(), 1u);
  auto fwd = decode_sync_message(queue_.front().bytes);
  ASSERT_TRUE(fwd);
  EXPECT_EQ(std::get<push_msg>(fwd.value()).records.size(), 3u);
}

TEST_F(ReplicatorTest, PendingSetIsBoundedAndEvictsOldest) {
  add_node("a");
  replicator_config cfg;
  cfg.max_pending = 3;
  auto& b = add_node("b", cfg);
  push_msg m;
  for (int i = 0; i < 5; ++i)
    m.records.push_back(encode(make(record_type::application, "app" + std::to_string(i))));
  b.rep->on_message("a", encode_sync_message(m), now_);
  EXPECT_EQ(b.rep->stats().pending, 3u);
  EXPECT_EQ(b.rep->stats().rejected_by_reason.at("pending_evicted"), 2u);
  m.records = {encode(grant_for(2))};
  b.rep->on_message("a", encode_sync_message(m), now_);
  EXPECT_FALSE(b.st->get(record_type::application, "app0").value());
  EXPECT_FALSE(b.st->get(record_type::application, "app1").value());
  EXPECT_TRUE(b.st->get(record_type::application, "app4").value());
}

TEST_F(ReplicatorTest, AntiEntropyInSteadyStateSendsOneSmallDigest) {
  auto& a = add_node("a");
  auto& b = add_node("b");
  ASSERT_TRUE(a.rep->publish(grant_for(2), now_));
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(a.rep->publish(make(record_type::application, "app" + std::to_string(i)), now_));
  }
  deliver_all();
  ASSERT_EQ(a.st->root_digest(), b.st->root_digest());
  const auto out_before = a.rep->stats().bytes_out + b.rep->stats().bytes_out;
  sync(a);
  EXPECT_EQ(a.rep->stats().syncs_started, 1u);
  EXPECT_EQ(b.rep->stats().syncs_equal, 1u);
  EXPECT_LT(a.rep->stats().bytes_out + b.rep->stats().bytes_out - out_before, 40u);
}

TEST_F(ReplicatorTest, AntiEntropyBringsAnEmptyNodeFullyUpToDateInOneRound) {
  auto& a = add_node("a");
  ASSERT_TRUE(a.rep->publish(grant_for(2, 1), now_));
  ASSERT_TRUE(a.rep->publish(grant_for(2, 2), now_));
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(a.rep->publish(make(record_type::progress, "d/" + std::to_string(i)), now_));
  }
  ASSERT_TRUE(a.st->apply_tombstone(record_type::intent, "pruned", 1).value());
  auto& b = add_node("b");  // joins late with nothing
  sync(b);
  sync(b);
  EXPECT_EQ(b.st->root_digest(), a.st->root_digest());
  EXPECT_EQ(all(b, record_type::progress).size(), 300u);
  EXPECT_EQ(b.st->grant_history(key_of(2)).size(), 2u);  // every grant version
  EXPECT_EQ(b.st->tombstone(record_type::intent, "pruned").value(), 1u);
  EXPECT_EQ(b.stored.size(), 302u);
  EXPECT_EQ(b.rep->stats().pending, 0u);  // grants first or retried: nothing left behind
}

TEST_F(ReplicatorTest, AntiEntropyExchangesBothWaysAndNewerVersionsWin) {
  auto& a = add_node("a");
  auto& b = add_node("b");
  ASSERT_TRUE(a.rep->publish(grant_for(2), now_));
  deliver_all();
  // Diverge without dissemination: write directly into each store.
  ASSERT_TRUE(a.st->put(make(record_type::application, "only-a")));
  ASSERT_TRUE(b.st->put(make(record_type::application, "only-b")));
  ASSERT_TRUE(a.st->put(make(record_type::config, "c", 2)));
  ASSERT_TRUE(b.st->put(make(record_type::config, "c", 5)));
  ASSERT_TRUE(a.st->put(make(record_type::group, "g", 7)));
  ASSERT_TRUE(b.st->put(make(record_type::group, "g", 3)));
  sync(a);
  sync(a);
  EXPECT_EQ(a.st->root_digest(), b.st->root_digest());
  EXPECT_TRUE(b.st->get(record_type::application, "only-a").value());
  EXPECT_TRUE(a.st->get(record_type::application, "only-b").value());
  EXPECT_EQ(a.st->get(record_type::config, "c").value()->version, 5u);
  EXPECT_EQ(b.st->get(record_type::group, "g").value()->version, 7u);
}

TEST_F(ReplicatorTest, MessagesAreSplitAtMaxStreamBytes) {
  replicator_config cfg;
  cfg.max_stream_bytes = 4096;  // the smallest allowed
  auto& a = add_node("a", cfg);
  ASSERT_TRUE(a.rep->publish(grant_for(2), now_));
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(a.st->put(make(record_type::revision, "r" + std::to_string(i), 1, 2, 500)));
  }
  auto& b = add_node("b", cfg);
  std::size_t largest = 0;
  std::size_t messages = 0;
  for (int round = 0; round < 3; ++round) {
    now_ = std::max(now_, b.rep->next_deadline());
    b.rep->on_tick(now_);
    for (int i = 0; i < 10'000 && !queue_.empty(); ++i) {
      auto m = std::move(queue_.front());
      queue_.pop_front();
      largest = std::max(largest, m.bytes.size());
      ++messages;
      nodes_.at(m.to)->rep->on_message(m.from, m.bytes, now_);
    }
  }
  EXPECT_EQ(b.st->root_digest(), a.st->root_digest());
  EXPECT_LE(largest, 4096u);
  EXPECT_GT(messages, 8u);  // 60 x ~650 bytes cannot fit in fewer pushes
}

TEST_F(ReplicatorTest, NextDeadlineIsImmediateFirstThenEverySyncInterval) {
  replicator_config cfg;
  cfg.sync_interval = 2s;
  auto& a = add_node("a", cfg);
  add_node("b");
  EXPECT_EQ(a.rep->next_deadline(), time_point::min());
  const time_point t0 = time_point{} + 10s;
  a.rep->on_tick(t0);
  const auto first = a.rep->next_deadline();
  EXPECT_GE(first, t0);
  EXPECT_LT(first, t0 + 2s);
  EXPECT_TRUE(queue_.empty());
  a.rep->on_tick(first - 1ms);
  EXPECT_TRUE(queue_.empty());
  a.rep->on_tick(first);
  EXPECT_EQ(queue_.size(), 1u);
  EXPECT_EQ(a.rep->next_deadline(), first + 2s);
}

TEST_F(ReplicatorTest, SameSeedSameChoices) {
  std::vector<std::string> runs[2];
  for (int run = 0; run < 2; ++run) {
    nodes_.clear();
    queue_.clear();
    seed_ = 77;
    auto& a = add_node("a");
    for (int i = 0; i < 8; ++i) add_node("p" + std::to_string(i));
    ASSERT_TRUE(a.rep->publish(grant_for(2), now_));
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(a.rep->publish(make(record_type::application, std::to_string(i)), now_));
    }
    for (const auto& m : queue_) runs[run].push_back(m.to);
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0].size(), 18u);
}

}  // namespace
}  // namespace meshdeploy::records

#include "node/own_record_coalescer.h"

#include "node/records/errc.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace meshdeploy::node {
namespace {

using namespace std::chrono_literals;

class OwnRecordCoalescerTest : public ::testing::Test {
 protected:
  struct published {
    std::string deployment;
    std::string phase;
    std::size_t events = 0;
    bool durable = false;
  };

  own_record_coalescer make(std::chrono::milliseconds delay) {
    return own_record_coalescer(
        [this](const records::payload& p, bool durable, std::uint64_t) -> result<bool> {
          const auto& pp = std::get<records::progress_payload>(p);
          out_.push_back({pp.deployment_id, pp.phase, pp.events.size(), durable});
          return true;
        },
        [this](std::chrono::milliseconds d, std::function<void()> fn) {
          delays_.push_back(d);
          timers_.push_back(std::move(fn));
        },
        delay);
  }

  static records::payload progress(const std::string& id, const std::string& phase,
                                   std::size_t events) {
    records::progress_payload p;
    p.deployment_id = id;
    p.host = "h1";
    p.phase = phase;
    p.events.resize(events);
    return p;
  }

  // Fires every deferred function handed out so far, in order.
  void fire_all() {
    auto due = std::move(timers_);
    timers_.clear();
    for (auto& fn : due) fn();
  }

  std::vector<published> out_;
  std::vector<std::chrono::milliseconds> delays_;
  std::vector<std::function<void()>> timers_;
};

TEST_F(OwnRecordCoalescerTest, IntermediateRecordsForOneKeyCollapseIntoTheNewest) {
  auto c = make(50ms);
  for (std::size_t i = 1; i <= 5; ++i) ASSERT_TRUE(c.publish(progress("d-1", "entered", i), false));
  EXPECT_TRUE(out_.empty());
  ASSERT_EQ(timers_.size(), 1u);  // one flush per held key, not per record
  EXPECT_EQ(delays_[0], 50ms);
  EXPECT_EQ(c.held(), 1u);
  fire_all();
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].events, 5u);
  EXPECT_FALSE(out_[0].durable);
  EXPECT_EQ(c.coalesced(), 4u);
  EXPECT_EQ(c.held(), 0u);
  // After the flush, the next intermediate record is held again.
  ASSERT_TRUE(c.publish(progress("d-1", "entered", 6), false));
  ASSERT_EQ(timers_.size(), 1u);
  fire_all();
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].events, 6u);
}

TEST_F(OwnRecordCoalescerTest, DurableRecordGoesOutAtOnceAndDropsTheHeldOne) {
  auto c = make(50ms);
  ASSERT_TRUE(c.publish(progress("d-1", "entered", 3), false));
  ASSERT_TRUE(c.publish(progress("d-1", "resolved", 13), true));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].phase, "resolved");
  EXPECT_TRUE(out_[0].durable);
  fire_all();  // the held intermediate record was superseded: nothing more goes out
  EXPECT_EQ(out_.size(), 1u);
  EXPECT_EQ(c.coalesced(), 1u);
}

TEST_F(OwnRecordCoalescerTest, KeysAreIndependent) {
  auto c = make(50ms);
  ASSERT_TRUE(c.publish(progress("d-1", "entered", 1), false));
  ASSERT_TRUE(c.publish(progress("d-2", "entered", 2), false));
  ASSERT_TRUE(c.publish(progress("d-2", "resolved", 13), true));  // drops d-2's only
  ASSERT_EQ(out_.size(), 1u);
  fire_all();
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].deployment, "d-1");
  EXPECT_EQ(out_[1].events, 1u);
}

TEST_F(OwnRecordCoalescerTest, ZeroDelayPublishesEverythingAtOnce) {
  auto c = make(0ms);
  ASSERT_TRUE(c.publish(progress("d-1", "entered", 1), false));
  ASSERT_TRUE(c.publish(progress("d-1", "entered", 2), false));
  EXPECT_EQ(out_.size(), 2u);
  EXPECT_TRUE(timers_.empty());
}

// A flush that already took the held record finishes publishing it before a durable record for
// the same key goes out, so the durable record always ends up with the higher version.
TEST_F(OwnRecordCoalescerTest, HeldRecordNeverOvertakesALaterDurableOne) {
  std::mutex m;
  std::condition_variable cv;
  bool flushing = false, release = false;
  std::vector<std::string> order;  // GUARDED_BY(m)
  own_record_coalescer c(
      [&](const records::payload& p, bool durable, std::uint64_t) -> result<bool> {
        std::unique_lock lock(m);
        if (!durable) {
          flushing = true;
          cv.notify_all();
          cv.wait_for(lock, 5s, [&] { return release; });
        }
        order.push_back(std::get<records::progress_payload>(p).phase);
        cv.notify_all();
        return true;
      },
      [this](std::chrono::milliseconds, std::function<void()> fn) {
        timers_.push_back(std::move(fn));
      },
      50ms);
  ASSERT_TRUE(c.publish(progress("d-1", "entered", 3), false));
  std::thread flusher([this] { fire_all(); });
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return flushing; }));
  }
  std::thread worker([&] { (void)c.publish(progress("d-1", "resolved", 13), true); });
  {
    // The durable record must wait for the flush in progress.
    std::unique_lock lock(m);
    EXPECT_FALSE(cv.wait_for(lock, 200ms, [&] { return !order.empty(); }));
    release = true;
    cv.notify_all();
  }
  flusher.join();
  worker.join();
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], "entered");
  EXPECT_EQ(order[1], "resolved");
}

TEST_F(OwnRecordCoalescerTest, DurableErrorsAreReturned) {
  own_record_coalescer c(
      [](const records::payload&, bool, std::uint64_t) -> result<bool> {
        return make_error(records::errc::io, "disk full");
      },
      [](std::chrono::milliseconds, std::function<void()>) {}, 50ms);
  auto r = c.publish(progress("d-1", "resolved", 13), true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "disk full");
}

}  // namespace
}  // namespace meshdeploy::node

// Remote log reads (node/deploy/log_service.h) between services on a hand-pumped in-memory
// network, with a fake membership view and fake local logs, on simulated time.
#include "node/deploy/log_service.h"

#include "node/deploy/errc.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace meshdeploy::deploy {
namespace {

using namespace std::chrono_literals;
using gossip::member_state;

struct envelope {
  std::string from;
  std::string to;
  std::vector<std::byte> bytes;
};

class LogServiceTest : public ::testing::Test {
 protected:
  struct host {
    std::unique_ptr<log_service> service;
    std::map<std::string, result<std::string>> logs;  // by "id/event"
    bool hold_reads = false;                          // keep reads pending in `held`
    std::vector<std::function<void()>> held;
    std::vector<std::pair<std::string, std::string>> reads;  // (id, event) asked of read_local
  };

  // Adds a member named `name`, alive in everyone's view.
  host& add(const std::string& name, log_service_options options = {}) {
    auto h = std::make_unique<host>();
    host* raw = h.get();
    states_[name] = member_state::alive;
    raw->service = std::make_unique<log_service>(
        name,
        log_service_env{
            [this, name](const std::string& to, std::vector<std::byte> bytes) -> result<void> {
              if (refuse_sends_) return make_error(errc::internal, "link down");
              wire_.push_back({name, to, std::move(bytes)});
              return ok();
            },
            [this](const std::string& who) -> std::optional<member_state> {
              auto it = states_.find(who);
              if (it == states_.end()) return std::nullopt;
              return it->second;
            },
            [raw](const std::string& id, const std::string& event, std::size_t max_bytes,
                  std::function<void(result<log_text>)> done) {
              raw->reads.emplace_back(id, event);
              auto answer = [raw, key = id + "/" + event, max_bytes, done = std::move(done)] {
                auto it = raw->logs.find(key);
                if (it == raw->logs.end()) {
                  done(make_error(errc::not_found, "no log of " + key));
                } else if (!it->second) {
                  done(it->second.error());
                } else {
                  done(tail_log(it->second.value(), max_bytes));
                }
              };
              if (raw->hold_reads) {
                raw->held.push_back(std::move(answer));
              } else {
                answer();
              }
            }},
        options);
    return *(hosts_[name] = std::move(h));
  }

  // Delivers every message in flight (and those they cause), at most 100.
  void pump() {
    for (int i = 0; i < 100 && !wire_.empty(); ++i) {
      envelope e = std::move(wire_.front());
      wire_.pop_front();
      if (auto it = hosts_.find(e.to); it != hosts_.end()) {
        it->second->service->on_message(e.from, e.bytes, now_);
      }
    }
  }

  // Asks `via` for `host`'s log; the outcome lands in the returned slot.
  std::shared_ptr<std::optional<result<log_text>>> fetch(const std::string& via,
                                                         const std::string& host,
                                                         const std::string& id,
                                                         const std::string& event = "") {
    auto slot = std::make_shared<std::optional<result<log_text>>>();
    hosts_.at(via)->service->fetch(host, id, event, now_,
                                   [slot](result<log_text> r) { slot->emplace(std::move(r)); });
    return slot;
  }

  std::map<std::string, std::unique_ptr<host>> hosts_;
  std::map<std::string, member_state> states_;
  std::deque<envelope> wire_;
  bool refuse_sends_ = false;
  log_clock::time_point now_ = log_clock::time_point{} + 1000h;
};

TEST_F(LogServiceTest, FetchReturnsTheHostsLogOfOneEvent) {
  add("node-1");
  auto& h3 = add("node-3");
  h3.logs.emplace("d-1/BeforeInstall", std::string("hello from node-3\n"));
  auto got = fetch("node-1", "node-3", "d-1", "BeforeInstall");
  EXPECT_FALSE(got->has_value());  // nothing before the answer arrives
  pump();
  ASSERT_TRUE(got->has_value());
  ASSERT_TRUE(got->value()) << got->value().error().message;
  EXPECT_EQ(got->value().value(), (log_text{"hello from node-3\n", false, 18}));
  ASSERT_EQ(h3.reads.size(), 1u);
  EXPECT_EQ(h3.reads[0], std::make_pair(std::string("d-1"), std::string("BeforeInstall")));
  EXPECT_EQ(hosts_["node-1"]->service->pending(), 0u);
  EXPECT_EQ(hosts_["node-1"]->service->stats().answers_received, 1u);
  EXPECT_EQ(h3.service->stats().requests_served, 1u);
}

TEST_F(LogServiceTest, ALogOverTheLimitArrivesAsItsLastLines) {
  log_service_options small;
  small.max_bytes = 16;
  add("node-1", small);
  auto& h3 = add("node-3");
  h3.logs.emplace("d-1/", std::string("first line\nsecond line\nthird\n"));
  auto got = fetch("node-1", "node-3", "d-1");
  pump();
  ASSERT_TRUE(got->has_value() && got->value());
  // The last 16 bytes start inside "second line"; the text starts at the next whole line.
  EXPECT_EQ(got->value().value(), (log_text{"third\n", true, 29}));
}

TEST_F(LogServiceTest, AHostServesAtMostItsOwnLimitWhateverTheAskerWants) {
  add("node-1");
  log_service_options small;
  small.max_bytes = 4;
  auto& h3 = add("node-3", small);
  h3.logs.emplace("d-1/", std::string("abcdefgh"));
  auto got = fetch("node-1", "node-3", "d-1");
  pump();
  ASSERT_TRUE(got->has_value() && got->value());
  EXPECT_EQ(got->value().value(), (log_text{"efgh", true, 8}));
}

TEST_F(LogServiceTest, UnknownDeadAndLeftHostsFailAtOnceNamingTheHost) {
  add("node-1");
  add("node-3");
  states_["node-3"] = member_state::dead;
  states_["node-4"] = member_state::left;
  auto unknown = fetch("node-1", "node-9", "d-1");
  auto dead = fetch("node-1", "node-3", "d-1");
  auto left = fetch("node-1", "node-4", "d-1");
  EXPECT_TRUE(wire_.empty());  // nothing was sent
  ASSERT_TRUE(unknown->has_value() && dead->has_value() && left->has_value());
  EXPECT_EQ(unknown->value().error().code, errc::not_found);
  EXPECT_NE(unknown->value().error().message.find("host 'node-9' is not a member"),
            std::string::npos);
  EXPECT_EQ(dead->value().error().code, errc::unavailable);
  EXPECT_NE(dead->value().error().message.find("host 'node-3' is dead"), std::string::npos);
  EXPECT_EQ(left->value().error().code, errc::unavailable);
  EXPECT_NE(left->value().error().message.find("host 'node-4' is gone"), std::string::npos);
}

TEST_F(LogServiceTest, ASuspectHostIsStillAsked) {
  add("node-1");
  auto& h3 = add("node-3");
  h3.logs.emplace("d-1/", std::string("x\n"));
  states_["node-3"] = member_state::suspect;
  auto got = fetch("node-1", "node-3", "d-1");
  pump();
  ASSERT_TRUE(got->has_value() && got->value());
}

TEST_F(LogServiceTest, NoAnswerTimesOutExactlyAtTheDeadline) {
  add("node-1");
  add("node-3");
  auto got = fetch("node-1", "node-3", "d-1");
  wire_.clear();  // the request is lost
  auto& svc = *hosts_["node-1"]->service;
  EXPECT_EQ(svc.next_deadline(), now_ + 5s);
  svc.on_tick(now_ + 5s - 1ms);
  EXPECT_FALSE(got->has_value());
  svc.on_tick(now_ + 5s);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(got->value().error().code, errc::timed_out);
  EXPECT_NE(got->value().error().message.find("host 'node-3' did not answer within 5000 ms"),
            std::string::npos);
  EXPECT_EQ(svc.next_deadline(), log_clock::time_point::max());
  EXPECT_EQ(svc.stats().timeouts, 1u);
  const std::string metrics = svc.prometheus_text();
  EXPECT_NE(metrics.find("meshdeploy_log_reads_total{what=\"timed_out\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("meshdeploy_log_reads_total{what=\"sent\"} 1\n"), std::string::npos);
  EXPECT_NE(metrics.find("meshdeploy_log_reads_pending 0\n"), std::string::npos);
}

TEST_F(LogServiceTest, ALateAnswerAfterTheTimeoutIsDropped) {
  add("node-1");
  auto& h3 = add("node-3");
  h3.logs.emplace("d-1/", std::string("late\n"));
  h3.hold_reads = true;
  auto got = fetch("node-1", "node-3", "d-1");
  pump();
  hosts_["node-1"]->service->on_tick(now_ + 5s);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(got->value().error().code, errc::timed_out);
  h3.held.front()();  // the read finishes now, the answer goes out
  pump();
  EXPECT_EQ(hosts_["node-1"]->service->stats().rejected_messages, 1u);
  EXPECT_EQ(hosts_["node-1"]->service->stats().answers_received, 0u);
}

TEST_F(LogServiceTest, HostErrorsArePassedOnWithTheHostsName) {
  add("node-1");
  auto& h3 = add("node-3");
  h3.logs.emplace("d-1/Bogus",
                  result<std::string>(
                      make_error(errc::invalid_argument, "'Bogus' is not a lifecycle event name")));
  h3.logs.emplace("d-1/Install", result<std::string>(make_error(errc::internal, "disk on fire")));
  auto missing = fetch("node-1", "node-3", "d-2");
  auto bad_event = fetch("node-1", "node-3", "d-1", "Bogus");
  auto broken = fetch("node-1", "node-3", "d-1", "Install");
  pump();
  ASSERT_TRUE(missing->has_value() && bad_event->has_value() && broken->has_value());
  EXPECT_EQ(missing->value().error().code, errc::not_found);
  EXPECT_EQ(missing->value().error().message, "host 'node-3': no log of d-2/");
  EXPECT_EQ(bad_event->value().error().code, errc::invalid_argument);
  EXPECT_EQ(bad_event->value().error().message,
            "host 'node-3': 'Bogus' is not a lifecycle event name");
  EXPECT_EQ(broken->value().error().code, errc::internal);
  EXPECT_EQ(broken->value().error().message,
            "host 'node-3' could not read its log of d-1: disk on fire");
}

TEST_F(LogServiceTest, AnAnswerFromAnotherMemberIsIgnored) {
  add("node-1");
  add("node-3");
  add("node-4");
  auto got = fetch("node-1", "node-3", "d-1");
  ASSERT_EQ(wire_.size(), 1u);
  wire_.clear();
  // node-4 forges an answer to the request it guessed.
  const auto forged = encode_log_message(log_response{1, log_status::ok, "", "forged\n", false, 7});
  hosts_["node-1"]->service->on_message("node-4", forged, now_);
  EXPECT_FALSE(got->has_value());
  EXPECT_EQ(hosts_["node-1"]->service->stats().rejected_messages, 1u);
  // The real one is still accepted.
  const auto real = encode_log_message(log_response{1, log_status::ok, "", "real\n", false, 5});
  hosts_["node-1"]->service->on_message("node-3", real, now_);
  ASSERT_TRUE(got->has_value() && got->value());
  EXPECT_EQ(got->value().value().text, "real\n");
  // A duplicate of it finds nobody waiting.
  hosts_["node-1"]->service->on_message("node-3", real, now_);
  EXPECT_EQ(hosts_["node-1"]->service->stats().rejected_messages, 2u);
}

TEST_F(LogServiceTest, InconsistentAnswersAndUnknownStatusesFailTheRead) {
  add("node-1");
  add("node-3");
  auto& svc = *hosts_["node-1"]->service;
  auto a = fetch("node-1", "node-3", "d-1");
  auto b = fetch("node-1", "node-3", "d-1");
  wire_.clear();
  svc.on_message("node-3",
                 encode_log_message(log_response{1, log_status::ok, "", "abcdef", true, 3}), now_);
  svc.on_message(
      "node-3",
      encode_log_message(log_response{2, static_cast<log_status>(77), "new", "", false, 0}), now_);
  ASSERT_TRUE(a->has_value() && b->has_value());
  EXPECT_EQ(a->value().error().code, errc::internal);
  EXPECT_EQ(b->value().error().code, errc::internal);
  EXPECT_NE(b->value().error().message.find("new"), std::string::npos);
}

TEST_F(LogServiceTest, MalformedMessagesAreCountedAndNothingIsAnswered) {
  add("node-1");
  auto& h3 = add("node-3");
  const std::vector<std::byte> junk{std::byte{0x93}, std::byte{0x01}};
  h3.service->on_message("node-1", junk, now_);
  h3.service->on_message("node-1", {}, now_);
  EXPECT_EQ(h3.service->stats().rejected_messages, 2u);
  EXPECT_TRUE(wire_.empty());
  EXPECT_TRUE(h3.reads.empty());
}

TEST_F(LogServiceTest, AHostServingItsLimitAnswersBusy) {
  add("node-1");
  log_service_options one;
  one.max_serving = 1;
  auto& h3 = add("node-3", one);
  h3.logs.emplace("d-1/", std::string("slow\n"));
  h3.hold_reads = true;
  auto first = fetch("node-1", "node-3", "d-1");
  auto second = fetch("node-1", "node-3", "d-1");
  pump();
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ(second->value().error().code, errc::unavailable);
  EXPECT_NE(second->value().error().message.find("host 'node-3' is busy"), std::string::npos);
  EXPECT_FALSE(first->has_value());
  h3.held.front()();
  pump();
  ASSERT_TRUE(first->has_value() && first->value());
  // The slot is free again.
  h3.hold_reads = false;
  auto third = fetch("node-1", "node-3", "d-1");
  pump();
  ASSERT_TRUE(third->has_value() && third->value());
}

TEST_F(LogServiceTest, AHostGoingDownFailsWhatWaitsOnIt) {
  add("node-1");
  add("node-3");
  add("node-4");
  auto on3 = fetch("node-1", "node-3", "d-1");
  auto on4 = fetch("node-1", "node-4", "d-1");
  wire_.clear();
  hosts_["node-1"]->service->on_member_down("node-3");
  ASSERT_TRUE(on3->has_value());
  EXPECT_EQ(on3->value().error().code, errc::unavailable);
  EXPECT_NE(on3->value().error().message.find("host 'node-3' went down"), std::string::npos);
  EXPECT_FALSE(on4->has_value());
}

TEST_F(LogServiceTest, RefusedSendsAndTooManyWaitingFailAtOnce) {
  log_service_options two;
  two.max_pending = 2;
  add("node-1", two);
  add("node-3");
  refuse_sends_ = true;
  auto refused = fetch("node-1", "node-3", "d-1");
  ASSERT_TRUE(refused->has_value());
  EXPECT_EQ(refused->value().error().code, errc::unavailable);
  EXPECT_NE(refused->value().error().message.find("cannot send to host 'node-3': link down"),
            std::string::npos);
  refuse_sends_ = false;
  auto a = fetch("node-1", "node-3", "d-1");
  auto b = fetch("node-1", "node-3", "d-1");
  auto c = fetch("node-1", "node-3", "d-1");
  EXPECT_FALSE(a->has_value());
  EXPECT_FALSE(b->has_value());
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ(c->value().error().code, errc::unavailable);
  EXPECT_EQ(hosts_["node-1"]->service->pending(), 2u);
}

TEST_F(LogServiceTest, BadArgumentsAndSelfAreRefusedBeforeSending) {
  add("node-1");
  add("node-3");
  auto self = fetch("node-1", "node-1", "d-1");
  auto empty = fetch("node-1", "node-3", "");
  auto long_id = fetch("node-1", "node-3", std::string(max_log_id_bytes + 1, 'd'));
  auto long_event = fetch("node-1", "node-3", "d-1", std::string(max_log_event_bytes + 1, 'e'));
  EXPECT_TRUE(wire_.empty());
  for (const auto* r : {&self, &empty, &long_id, &long_event}) {
    ASSERT_TRUE((*r)->has_value());
    EXPECT_EQ((*r)->value().error().code, errc::invalid_argument);
  }
}

}  // namespace
}  // namespace meshdeploy::deploy

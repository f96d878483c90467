// Remote log reads (`meshdeploy logs ID --host H` through any node; docs/api.md, issue 5): a
// small request/response service over the mesh's sealed direct messages (gossip user type 5,
// wire in node/deploy/log_messages.h). Both sides live in one object:
//   - asking: fetch() sends a request to the host and calls `done` once, with the host's answer,
//     or with an error naming the host when it is unknown, dead, left, or does not answer
//     within the timeout;
//   - answering: a request from a member is served by reading this host's own log (through the
//     injected `read_local`, which is local_deployer::read_log on the node's thread pool), only
//     its last bytes when it is longer than the asker accepts, and sent back to that member.
// Sans-IO: sends, membership and the log read go through log_service_env, time comes in as
// arguments, and timeouts fire from on_tick.
//
// Trust: a request is answered only when it arrived as a direct message, whose sender the
// gossip driver authenticated (it is sealed with the cluster keyring, so the sender is a cluster
// member); the node wires nothing else to on_message. A response is accepted only from the host
// it was asked of, for a request still waiting; anything else is dropped and counted.
//
// Thread safety: not thread-safe; call everything from one thread (the node's io thread), and
// call read_local's completion on that thread too.
#pragma once

#include "gossip/types.h"
#include "node/deploy/log_messages.h"
#include "node/deploy/log_text.h"
#include "storage/result.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace meshdeploy::deploy {

using log_clock = std::chrono::steady_clock;

struct log_service_env {
  // Sends `bytes` to the member `host` (gossip_driver::send_user with mesh::user_type_logs).
  // An error means nothing was sent.
  std::function<result<void>(const std::string& host, std::vector<std::byte> bytes)> send;
  // The state of the member `host` in this node's view; nullopt when it is not a member.
  std::function<std::optional<gossip::member_state>(const std::string& host)> member_state;
  // Reads the last `max_bytes` of this host's log of `deployment_id` ("" `event` = all of it;
  // local_deployer::read_log) and calls `done` once, on the service's thread, with the text or
  // an error (deploy::errc: not_found, invalid_argument, or another). May call `done` before
  // returning.
  std::function<void(const std::string& deployment_id, const std::string& event,
                     std::size_t max_bytes, std::function<void(result<log_text>)> done)>
      read_local;
};

struct log_service_options {
  // How long fetch() waits for the host's answer.
  std::chrono::milliseconds timeout{5000};
  // The most text asked for (and served): the host keeps the last bytes of a longer log.
  std::size_t max_bytes = max_log_text_bytes;
  // Requests this node waits on at once; more fail at once (unavailable, "too many").
  std::size_t max_pending = 64;
  // Log reads this host serves at once; more are answered `busy`.
  std::size_t max_serving = 4;
};

struct log_service_stats {
  std::uint64_t requests_sent = 0;
  std::uint64_t requests_served = 0;   // answered, any status
  std::uint64_t answers_received = 0;  // matched a waiting request
  std::uint64_t timeouts = 0;
  std::uint64_t rejected_messages = 0;  // undecodable, unexpected request id or sender
  std::uint64_t send_failures = 0;      // answers that could not be sent back
};

class log_service {
 public:
  using done_fn = std::function<void(result<log_text>)>;

  // `self` is this node's name (a fetch of it is refused: read locally instead).
  log_service(std::string self, log_service_env env, log_service_options options = {});
  log_service(const log_service&) = delete;
  log_service& operator=(const log_service&) = delete;

  // Asks `host` for its log of `deployment_id` (one event's part when `event` is not empty) and
  // calls `done` exactly once: from fetch itself (refused at once), from on_message (the
  // answer), from on_tick (no answer within the timeout) or from on_member_down.
  // Errors (deploy::errc), each message naming the host: not_found (not a member, or the host
  // does not know the deployment or holds no log of it), unavailable (dead or left, cannot be
  // sent to, busy, too many requests waiting), timed_out, invalid_argument (the host refused the
  // request, e.g. an unknown event; or host == self), internal (the host failed to read).
  void fetch(const std::string& host, const std::string& deployment_id, const std::string& event,
             log_clock::time_point now, done_fn done);

  // A direct message of user type 5 from the member `from` (authenticated by the driver).
  void on_message(const std::string& from, std::span<const std::byte> bytes,
                  log_clock::time_point now);

  // Fails the requests waiting on `host` (it was declared dead or left).
  void on_member_down(const std::string& host);

  // Fails the requests whose timeout passed.
  void on_tick(log_clock::time_point now);
  // The earliest timeout of a waiting request; time_point::max() when none waits.
  [[nodiscard]] log_clock::time_point next_deadline() const;

  [[nodiscard]] std::size_t pending() const { return pending_.size(); }
  [[nodiscard]] const log_service_stats& stats() const { return stats_; }
  // Prometheus text for /metrics: meshdeploy_log_reads_total{what=sent|served|answered|
  // timed_out|rejected|send_failed} and meshdeploy_log_reads_pending.
  [[nodiscard]] std::string prometheus_text() const;

 private:
  struct waiting {
    std::string host;
    std::string deployment_id;
    log_clock::time_point deadline;
    done_fn done;
  };

  void serve(const std::string& from, const log_request& req);
  void answer(const std::string& from, const log_response& res);
  void finish(std::uint64_t request_id, result<log_text> r);

  std::string self_;
  log_service_env env_;
  log_service_options options_;
  std::uint64_t next_id_;
  std::map<std::uint64_t, waiting> pending_;  // by request id
  std::size_t serving_ = 0;
  log_service_stats stats_;
};

}  // namespace meshdeploy::deploy

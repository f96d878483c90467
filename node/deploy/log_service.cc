#include "node/deploy/log_service.h"

#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <variant>

namespace meshdeploy::deploy {

namespace {

// The reason to give the asker for a local read error.
log_status status_of(const error& e) {
  if (e.code == errc::not_found) return log_status::not_found;
  if (e.code == errc::invalid_argument) return log_status::invalid_argument;
  return log_status::internal;
}

std::string cut_message(std::string m) {
  if (m.size() > max_log_message_bytes) m.resize(max_log_message_bytes);
  return m;
}

}  // namespace

log_service::log_service(std::string self, log_service_env env, log_service_options options)
    : self_(std::move(self)), env_(std::move(env)), options_(options), next_id_(1) {
  options_.max_bytes = std::clamp<std::size_t>(options_.max_bytes, 1, max_log_text_bytes);
}

void log_service::fetch(const std::string& host, const std::string& deployment_id,
                        const std::string& event, log_clock::time_point now, done_fn done) {
  if (host == self_) {
    done(make_error(errc::invalid_argument,
                    fmt::format("host '{}' is this node: read its log locally", host)));
    return;
  }
  if (deployment_id.empty() || deployment_id.size() > max_log_id_bytes) {
    done(make_error(errc::invalid_argument,
                    fmt::format("deployment id '{}' is empty or longer than {} bytes",
                                deployment_id.substr(0, max_log_id_bytes), max_log_id_bytes)));
    return;
  }
  if (event.size() > max_log_event_bytes) {
    done(make_error(errc::invalid_argument,
                    fmt::format("'{}...' is not a lifecycle event name (e.g. ApplicationStart)",
                                event.substr(0, max_log_event_bytes))));
    return;
  }
  const auto state = env_.member_state(host);
  if (!state) {
    done(make_error(errc::not_found,
                    fmt::format("host '{}' is not a member of the cluster as node '{}' sees it "
                                "(meshdeploy members lists them)",
                                host, self_)));
    return;
  }
  if (*state == gossip::member_state::dead || *state == gossip::member_state::left) {
    done(make_error(
        errc::unavailable,
        fmt::format("host '{}' is {}: its log cannot be read until it is back", host,
                    *state == gossip::member_state::dead ? "dead (not answering)"
                                                         : "gone (it left the cluster)")));
    return;
  }
  if (pending_.size() >= options_.max_pending) {
    done(make_error(errc::unavailable,
                    fmt::format("node '{}' is already waiting on {} log reads; try again shortly",
                                self_, pending_.size())));
    return;
  }
  const std::uint64_t id = next_id_++;
  log_request req{id, deployment_id, event, static_cast<std::uint32_t>(options_.max_bytes)};
  if (auto s = env_.send(host, encode_log_message(req)); !s) {
    done(make_error(errc::unavailable,
                    fmt::format("cannot send to host '{}': {}", host, s.error().message)));
    return;
  }
  ++stats_.requests_sent;
  pending_.emplace(id, waiting{host, deployment_id, now + options_.timeout, std::move(done)});
}

void log_service::on_message(const std::string& from, std::span<const std::byte> bytes,
                             log_clock::time_point /*now*/) {
  auto m = decode_log_message(bytes);
  if (!m) {
    ++stats_.rejected_messages;
    spdlog::debug("logs: dropped a message from {}: {}", from, m.error().message);
    return;
  }
  if (const auto* req = std::get_if<log_request>(&m.value())) {
    serve(from, *req);
    return;
  }
  const auto& res = std::get<log_response>(m.value());
  auto it = pending_.find(res.request_id);
  if (it == pending_.end() || it->second.host != from) {
    // Late (timed out already), duplicated, or not from the host asked: never trusted.
    ++stats_.rejected_messages;
    spdlog::debug("logs: dropped an answer from {} to request {} (not waiting for it)", from,
                  res.request_id);
    return;
  }
  ++stats_.answers_received;
  const std::string& host = it->second.host;
  const std::string& id = it->second.deployment_id;
  const std::string why = res.message.empty() ? "no reason given" : res.message;
  switch (res.status) {
    case log_status::ok:
      if (res.truncated && res.full_bytes < res.text.size()) {
        ++stats_.rejected_messages;
        finish(res.request_id,
               make_error(errc::internal, fmt::format("host '{}' answered an inconsistent log "
                                                      "({} bytes shown of {})",
                                                      host, res.text.size(), res.full_bytes)));
        return;
      }
      finish(res.request_id,
             log_text{res.text, res.truncated, res.truncated ? res.full_bytes : res.text.size()});
      return;
    case log_status::not_found:
      finish(res.request_id, make_error(errc::not_found, fmt::format("host '{}': {}", host, why)));
      return;
    case log_status::invalid_argument:
      finish(res.request_id,
             make_error(errc::invalid_argument, fmt::format("host '{}': {}", host, why)));
      return;
    case log_status::busy:
      finish(res.request_id,
             make_error(errc::unavailable,
                        fmt::format("host '{}' is busy serving other log reads; try again "
                                    "shortly ({})",
                                    host, why)));
      return;
    case log_status::internal:
      break;
  }
  finish(res.request_id,
         make_error(errc::internal,
                    fmt::format("host '{}' could not read its log of {}: {}", host, id, why)));
}

void log_service::serve(const std::string& from, const log_request& req) {
  if (serving_ >= options_.max_serving) {
    answer(from, log_response{req.request_id,
                              log_status::busy,
                              fmt::format("already serving {} log reads", serving_),
                              {},
                              false,
                              0});
    return;
  }
  ++serving_;
  const std::size_t max = std::min<std::size_t>(req.max_bytes, options_.max_bytes);
  env_.read_local(
      req.deployment_id, req.event, max, [this, from, id = req.request_id](result<log_text> r) {
        --serving_;
        if (!r) {
          answer(from, log_response{
                           id, status_of(r.error()), cut_message(r.error().message), {}, false, 0});
          return;
        }
        log_text t = std::move(r).value();
        answer(from,
               log_response{id, log_status::ok, {}, std::move(t.text), t.truncated, t.full_bytes});
      });
}

void log_service::answer(const std::string& from, const log_response& res) {
  ++stats_.requests_served;
  if (auto s = env_.send(from, encode_log_message(res)); !s) {
    ++stats_.send_failures;
    spdlog::debug("logs: cannot answer {}: {}", from, s.error().message);
  }
}

void log_service::finish(std::uint64_t request_id, result<log_text> r) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;
  done_fn done = std::move(it->second.done);
  pending_.erase(it);
  done(std::move(r));
}

void log_service::on_member_down(const std::string& host) {
  std::vector<std::uint64_t> ids;
  for (const auto& [id, w] : pending_) {
    if (w.host == host) ids.push_back(id);
  }
  for (auto id : ids) {
    finish(id, make_error(errc::unavailable,
                          fmt::format("host '{}' went down before it answered", host)));
  }
}

void log_service::on_tick(log_clock::time_point now) {
  std::vector<std::uint64_t> ids;
  for (const auto& [id, w] : pending_) {
    if (w.deadline <= now) ids.push_back(id);
  }
  for (auto id : ids) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;  // a `done` above may not touch pending_, but be safe
    ++stats_.timeouts;
    const std::string host = it->second.host;
    finish(id, make_error(errc::timed_out,
                          fmt::format("host '{}' did not answer within {} ms (it may have just "
                                      "died, be partitioned away or overloaded)",
                                      host, options_.timeout.count())));
  }
}

std::string log_service::prometheus_text() const {
  std::string out;
  out +=
      "# HELP meshdeploy_log_reads_total Remote log reads: requests sent and served, answers "
      "received, timeouts, messages rejected, answers that could not be sent.\n";
  out += "# TYPE meshdeploy_log_reads_total counter\n";
  const std::pair<const char*, std::uint64_t> counters[] = {
      {"sent", stats_.requests_sent},         {"served", stats_.requests_served},
      {"answered", stats_.answers_received},  {"timed_out", stats_.timeouts},
      {"rejected", stats_.rejected_messages}, {"send_failed", stats_.send_failures}};
  for (const auto& [what, n] : counters) {
    out += fmt::format("meshdeploy_log_reads_total{{what=\"{}\"}} {}\n", what, n);
  }
  out += "# HELP meshdeploy_log_reads_pending Remote log reads waiting for an answer.\n";
  out += "# TYPE meshdeploy_log_reads_pending gauge\n";
  out += fmt::format("meshdeploy_log_reads_pending {}\n", pending_.size());
  return out;
}

log_clock::time_point log_service::next_deadline() const {
  auto next = log_clock::time_point::max();
  for (const auto& [id, w] : pending_) next = std::min(next, w.deadline);
  return next;
}

}  // namespace meshdeploy::deploy

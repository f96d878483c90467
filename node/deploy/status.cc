#include "node/deploy/status.h"

#include "node/agent/lifecycle_event.h"
#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <ctime>

namespace meshdeploy::deploy {
namespace {

constexpr std::array<std::string_view, 6> kDeploymentNames = {"Created",   "Queued", "InProgress",
                                                              "Succeeded", "Failed", "Stopped"};
constexpr std::array<std::string_view, 6> kHostNames = {"Pending", "InProgress", "Succeeded",
                                                        "Failed",  "Skipped",    "Unknown"};

// Parses our own RFC 3339 form back ("YYYY-MM-DDTHH:MM:SS.mmmZ").
result<unix_ms> parse_rfc3339(const std::string& s) {
  if (s.empty()) return unix_ms{0};
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    return make_error(errc::invalid_argument, fmt::format("time '{}' is not RFC 3339", s));
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<unix_ms>(::timegm(&tm)) * 1000 + ms;
}

}  // namespace

std::vector<event_status> pending_lifecycle_events() {
  std::vector<event_status> events;
  for (agent::lifecycle_event e : agent::lifecycle_order()) {
    events.push_back(
        event_status{std::string(agent::to_string(e)), host_status::pending, 0, 0, {}});
  }
  return events;
}

std::string_view to_string(deployment_status s) { return kDeploymentNames[static_cast<int>(s)]; }
std::string_view to_string(host_status s) { return kHostNames[static_cast<int>(s)]; }

std::optional<deployment_status> parse_deployment_status(std::string_view s) {
  for (std::size_t i = 0; i < kDeploymentNames.size(); ++i) {
    if (kDeploymentNames[i] == s) return static_cast<deployment_status>(i);
  }
  return std::nullopt;
}

std::optional<host_status> parse_host_status(std::string_view s) {
  for (std::size_t i = 0; i < kHostNames.size(); ++i) {
    if (kHostNames[i] == s) return static_cast<host_status>(i);
  }
  return std::nullopt;
}

bool is_terminal(deployment_status s) {
  return s == deployment_status::succeeded || s == deployment_status::failed ||
         s == deployment_status::stopped;
}

bool is_terminal(host_status s) {
  return s == host_status::succeeded || s == host_status::failed || s == host_status::skipped;
}

unix_ms now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string to_rfc3339(unix_ms t) {
  if (t == 0) return {};
  const std::time_t secs = static_cast<std::time_t>(t / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(t % 1000));
}

overview compute_overview(const deployment_record& d) {
  overview o;
  for (const auto& h : d.hosts) {
    switch (h.status) {
      case host_status::pending:
        ++o.pending;
        break;
      case host_status::in_progress:
        ++o.in_progress;
        break;
      case host_status::succeeded:
        ++o.succeeded;
        break;
      case host_status::failed:
        ++o.failed;
        break;
      case host_status::skipped:
        ++o.skipped;
        break;
      case host_status::unknown:
        ++o.unknown;
        break;
    }
  }
  return o;
}

nlohmann::json to_json(const deployment_record& d) {
  using nlohmann::json;
  const overview o = compute_overview(d);
  json hosts = json::array();
  for (const auto& h : d.hosts) {
    json events = json::array();
    for (const auto& e : h.events) {
      json ej = {{"name", e.name},
                 {"status", to_string(e.status)},
                 {"startTime", e.start_time ? json(to_rfc3339(e.start_time)) : json(nullptr)},
                 {"endTime", e.end_time ? json(to_rfc3339(e.end_time)) : json(nullptr)}};
      if (e.diag) {
        ej["diagnostics"] = {{"errorCode", e.diag->error_code},
                             {"scriptName", e.diag->script_name},
                             {"message", e.diag->message},
                             {"logTail", e.diag->log_tail}};
      } else {
        ej["diagnostics"] = nullptr;
      }
      if (!e.message.empty()) ej["message"] = e.message;
      events.push_back(std::move(ej));
    }
    hosts.push_back(
        {{"host", h.host}, {"status", to_string(h.status)}, {"events", std::move(events)}});
  }
  json j = {
      {"deploymentId", d.id},
      {"application", d.application},
      {"deploymentGroup", d.group},
      {"deploymentGroupId", d.group_id},
      {"revision", d.revision},
      {"bundleType", d.bundle_format},
      {"deploymentConfig", d.config},
      {"status", to_string(d.status)},
      {"creator", d.creator},
      {"deploymentCreator", d.deployment_creator},
      {"rollbackInfo",
       d.rollback_of.empty() && d.rolled_back_by.empty()
           ? json(nullptr)
           : json{{"rollbackDeploymentId",
                   d.rolled_back_by.empty() ? json(nullptr) : json(d.rolled_back_by)},
                  {"rollbackTriggeringDeploymentId",
                   d.rollback_of.empty() ? json(nullptr) : json(d.rollback_of)}}},
      {"createTime", d.create_time ? json(to_rfc3339(d.create_time)) : json(nullptr)},
      {"completeTime", d.complete_time ? json(to_rfc3339(d.complete_time)) : json(nullptr)},
      {"fileExistsBehavior",
       d.file_exists_behavior.empty() ? json(nullptr) : json(d.file_exists_behavior)},
      {"ignoreApplicationStopFailures", d.ignore_stop_failures},
      {"overview",
       {{"Pending", o.pending},
        {"InProgress", o.in_progress},
        {"Succeeded", o.succeeded},
        {"Failed", o.failed},
        {"Skipped", o.skipped},
        {"Unknown", o.unknown}}},
      {"errorInformation",
       d.error ? json{{"code", d.error->code}, {"message", d.error->message}} : json(nullptr)},
      {"hosts", std::move(hosts)},
      {"version", d.version}};
  return j;
}

result<deployment_record> deployment_from_json(const nlohmann::json& j) {
  // Field access goes through these helpers so that a malformed document is an
  // error naming the field, never an exception escaping.
  std::string bad;
  auto str = [&](const nlohmann::json& o, const char* key) -> std::string {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return {};
    if (!it->is_string()) {
      if (bad.empty()) bad = key;
      return {};
    }
    return it->get<std::string>();
  };
  auto time = [&](const nlohmann::json& o, const char* key) -> unix_ms {
    auto t = parse_rfc3339(str(o, key));
    if (!t) {
      if (bad.empty()) bad = key;
      return 0;
    }
    return t.value();
  };
  if (!j.is_object()) return make_error(errc::invalid_argument, "deployment is not a JSON object");
  deployment_record d;
  d.id = str(j, "deploymentId");
  d.application = str(j, "application");
  d.group = str(j, "deploymentGroup");
  d.group_id = str(j, "deploymentGroupId");
  d.revision = str(j, "revision");
  d.bundle_format = str(j, "bundleType");
  d.config = str(j, "deploymentConfig");
  d.creator = str(j, "creator");
  d.deployment_creator = str(j, "deploymentCreator");
  if (d.deployment_creator.empty()) d.deployment_creator = "user";
  if (auto it = j.find("rollbackInfo"); it != j.end() && it->is_object()) {
    d.rolled_back_by = str(*it, "rollbackDeploymentId");
    d.rollback_of = str(*it, "rollbackTriggeringDeploymentId");
  }
  d.file_exists_behavior = str(j, "fileExistsBehavior");
  d.ignore_stop_failures = j.value("ignoreApplicationStopFailures", false);
  d.create_time = time(j, "createTime");
  d.complete_time = time(j, "completeTime");
  if (auto s = parse_deployment_status(str(j, "status"))) {
    d.status = *s;
  } else if (bad.empty()) {
    bad = "status";
  }
  if (auto it = j.find("errorInformation"); it != j.end() && it->is_object()) {
    d.error = error_information{str(*it, "code"), str(*it, "message")};
  }
  if (auto it = j.find("version"); it != j.end() && it->is_number_unsigned()) {
    d.version = it->get<std::uint64_t>();
  }
  if (auto it = j.find("hosts"); it != j.end() && it->is_array()) {
    for (const auto& hj : *it) {
      if (!hj.is_object()) {
        bad = "hosts[]";
        break;
      }
      host_progress h;
      h.host = str(hj, "host");
      h.status = parse_host_status(str(hj, "status")).value_or(host_status::unknown);
      if (auto ev = hj.find("events"); ev != hj.end() && ev->is_array()) {
        for (const auto& ejs : *ev) {
          if (!ejs.is_object()) {
            bad = "events[]";
            break;
          }
          event_status e;
          e.name = str(ejs, "name");
          e.status = parse_host_status(str(ejs, "status")).value_or(host_status::unknown);
          e.start_time = time(ejs, "startTime");
          e.end_time = time(ejs, "endTime");
          if (auto dg = ejs.find("diagnostics"); dg != ejs.end() && dg->is_object()) {
            e.diag = diagnostics{str(*dg, "errorCode"), str(*dg, "scriptName"), str(*dg, "message"),
                                 str(*dg, "logTail")};
          }
          e.message = str(ejs, "message");
          h.events.push_back(std::move(e));
        }
      }
      d.hosts.push_back(std::move(h));
    }
  }
  if (!bad.empty()) {
    return make_error(errc::invalid_argument,
                      fmt::format("deployment document: field '{}' has the wrong type", bad));
  }
  return d;
}

}  // namespace meshdeploy::deploy

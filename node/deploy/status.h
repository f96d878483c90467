// The status of a deployment as every reader sees it: CodeDeploy's statuses
// and JSON shapes (DESIGN.md §10, docs/cli.md). Plain values; no I/O.
#pragma once

#include "storage/result.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::deploy {

enum class deployment_status { created, queued, in_progress, succeeded, failed, stopped };
// Used for hosts and for lifecycle events alike.
enum class host_status { pending, in_progress, succeeded, failed, skipped, unknown };

std::string_view to_string(deployment_status);  // "Created", "InProgress", ...
std::string_view to_string(host_status);        // "Pending", "InProgress", ...
std::optional<deployment_status> parse_deployment_status(std::string_view);
std::optional<host_status> parse_host_status(std::string_view);
bool is_terminal(deployment_status);
bool is_terminal(host_status);

// Milliseconds since the Unix epoch; 0 means "not set".
using unix_ms = std::int64_t;
unix_ms now_ms();
// "2026-11-28T12:13:14.123Z"; "" for 0.
std::string to_rfc3339(unix_ms t);

struct diagnostics {
  std::string error_code;  // Success | ScriptMissing | ScriptNotExecutable | ScriptTimedOut |
                           // ScriptFailed | UnknownError
  std::string script_name;
  std::string message;
  std::string log_tail;  // last 4 KiB of the script output

  friend bool operator==(const diagnostics&, const diagnostics&) = default;
};

struct event_status {
  std::string name;  // lifecycle event name, e.g. "ApplicationStop"
  host_status status = host_status::pending;
  unix_ms start_time = 0;
  unix_ms end_time = 0;
  std::optional<diagnostics> diag;
  // What an InProgress event is doing when it says (e.g. DownloadBundle's bytes held); "".
  std::string message;

  friend bool operator==(const event_status&, const event_status&) = default;
};

// One entry per lifecycle event, in execution order, all pending (a host row before it runs).
std::vector<event_status> pending_lifecycle_events();

struct host_progress {
  std::string host;
  host_status status = host_status::pending;
  std::vector<event_status> events;  // every lifecycle event, in execution order

  friend bool operator==(const host_progress&, const host_progress&) = default;
};

struct error_information {
  std::string code;  // e.g. "HEALTH_CONSTRAINTS", "NO_INSTANCES", "DEPLOYMENT_INTERRUPTED"
  std::string message;

  friend bool operator==(const error_information&, const error_information&) = default;
};

struct deployment_record {
  std::string id;  // "d-XXXXXXXXX"
  std::string application;
  std::string group;
  std::string group_id;
  std::string revision;  // BLAKE2b-256 hex
  std::string bundle_format;
  std::string config;
  std::string creator;
  // CodeDeploy's deploymentCreator: "user" (an operator), "codeDeployRollback" (an automatic
  // rollback written by the nodes), "autoscaling" (a host's catch-up to the last revision).
  std::string deployment_creator = "user";
  std::string rollback_of;           // the deployment this one rolls back ("" if none)
  std::string rolled_back_by;        // the deployment that rolls this one back ("" if none)
  std::string file_exists_behavior;  // "" = the appspec's (default DISALLOW)
  bool ignore_stop_failures = false;
  unix_ms create_time = 0;
  unix_ms complete_time = 0;
  deployment_status status = deployment_status::created;
  std::optional<error_information> error;
  std::vector<host_progress> hosts;
  std::uint64_t version = 0;  // bumped on every change; lets watchers wait for news

  friend bool operator==(const deployment_record&, const deployment_record&) = default;
};

struct overview {
  std::uint32_t pending = 0, in_progress = 0, succeeded = 0, failed = 0, skipped = 0, unknown = 0;
};
overview compute_overview(const deployment_record& d);

// JSON (the documented public shape). from_json checks every field it reads
// and returns an error naming the field instead of throwing.
nlohmann::json to_json(const deployment_record& d);
result<deployment_record> deployment_from_json(const nlohmann::json& j);

}  // namespace meshdeploy::deploy

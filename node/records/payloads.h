// The typed payloads carried inside signed records (node/records/record.h), one
// struct per record type, and their msgpack codec. Each payload names the
// resource it is about, so the verifier (node/security/verifier.h) can check
// the writer's grant and that the record key matches the payload.
//
// Encoding: each payload is a msgpack array of its fields in declaration order
// (a new field may only be appended; decoders accept and ignore extra trailing
// elements from newer writers). Documented in docs/records.md.
#pragma once

#include "node/records/record.h"
#include "storage/result.h"

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace meshdeploy::records {

// admin -> operator. key = to_hex(operator_key).
struct grant_payload {
  std::string operator_name;
  public_key operator_key{};
  // "ACTION:RESOURCE" patterns. Actions: define, deploy, stop, read, or *. Resources:
  // app/APP (application, revisions), app/APP/GROUP (group, deployments, stop, exclude),
  // config/NAME. '*' in a resource matches any run of characters, '/' included.
  std::vector<std::string> allow;
  bool revoked = false;  // true: the operator may do nothing from this version on
};

// key = name
struct application_payload {
  std::string name;
  bool deleted = false;
};

// OR of AND-sets of tags, as CodeDeploy's tag sets.
using tag_selector = std::vector<std::map<std::string, std::string>>;

// key = app + "/" + name
struct group_payload {
  std::string app;
  std::string name;
  tag_selector selector;
  std::string config = "OneAtATime";
  bool auto_rollback = false;
  bool deleted = false;
};

// key = name. Mirrors node/deploy/deployment_config.h (type as its integer value).
struct config_payload {
  std::string name;
  std::uint8_t min_healthy_type = 0;  // 0 host_count, 1 fleet_percent, 2 one_at_a_time
  std::uint32_t value = 0;
  bool deleted = false;
};

// key = app + "/" + id
struct revision_payload {
  std::string app;
  std::string id;      // BLAKE2b-256 hex of the bundle bytes
  std::string format;  // zip | tar | tgz
  std::uint64_t size = 0;
  std::string manifest;  // BLAKE2b-256 hex of the piece manifest ("" until the swarm lands)
  std::string origin;    // node that holds the bytes first (where it was pushed)
};

// key = deployment_id. The operator signs the whole plan, targets included.
struct intent_payload {
  std::string deployment_id;
  std::string app;
  std::string group;
  std::string revision;
  std::string config;                    // canonical name
  std::vector<std::string> targets;      // host names, in rollout order
  std::uint32_t max_out_of_service = 1;  // K
  std::uint32_t failure_budget = 0;      // extra failures tolerated (0 = CodeDeploy's rules only)
  std::string rollback_of;               // deployment this one rolls back, or ""
  bool ignore_stop_failures = false;
  std::string file_exists_behavior;  // DISALLOW | OVERWRITE | RETAIN, "" = appspec/default
  std::string creator;               // operator name (display)
  // Hosts that are not targets but count in the admission committee: the hosts of the group's
  // previous deployment that the plan left out (absent, or no longer matching). With them, an
  // intent planned by a node that sees few hosts (cut off from the mesh) still needs a majority
  // of the group as its planner last knew it (docs/rollout.md "Admission committee").
  // Optional on the wire: encoded as a 13th field only when non-empty, so intents without it
  // keep their bytes. Never overlaps `targets`.
  std::vector<std::string> electorate;
};

// key = app/group/parent/host. The host agrees that `child` follows `parent` in this group.
struct approval_payload {
  std::string app;
  std::string group;
  std::string parent;  // previous deployment of the group, "" for the first
  std::string child;
  std::string host;
};

struct event_progress {
  std::string name;    // lifecycle event name
  std::string status;  // Pending | InProgress | Succeeded | Failed | Skipped | Unknown
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  std::string error_code;  // diagnostics, "" when none
  std::string script;
  std::string message;
  std::string log_tail;
};

// key = deployment_id/host. Newest version wins.
struct progress_payload {
  std::string deployment_id;
  std::string host;
  // entered: the host took a token and is inside the window; resolved: ValidateService passed
  // (frees the token); failed; skipped (never entered: stop, or the deployment ended).
  std::string phase;  // pending | entered | resolved | failed | skipped
  std::vector<event_progress> events;
};

// key = deployment_id
struct stop_payload {
  std::string deployment_id;
  std::string app;
  std::string group;
  std::string reason;
};

// key = deployment_id/host
struct exclude_payload {
  std::string deployment_id;
  std::string app;
  std::string group;
  std::string host;
};

// key = name. A node's binding of its name to its Ed25519 key (signed by that key).
struct host_payload {
  std::string name;
  public_key key{};
};

using payload = std::variant<grant_payload, application_payload, group_payload, config_payload,
                             revision_payload, intent_payload, approval_payload, progress_payload,
                             stop_payload, exclude_payload, host_payload>;

record_type type_of(const payload& p);

// Encodes a payload (never fails; callers keep within max_payload_bytes).
std::vector<std::byte> encode_payload(const payload& p);

// Decodes the payload of a record of type `t` from untrusted bytes. Never throws.
// Errors: malformed (names the type and field), too_large.
result<payload> decode_payload(record_type t, std::span<const std::byte> bytes);

// The key a record carrying `p` must have (see the table in record.h).
std::string expected_key(const payload& p);

}  // namespace meshdeploy::records

// Who may write which record: the checks every node applies before it stores
// or forwards a record (verify), and the stricter check a node's API applies to
// records an operator submits through it (check_submission). The rules and
// their limits are in docs/records.md ("Verification").
//
// Threading: pure functions; the trust_source is only read (it must not change
// during a call).
#pragma once

#include "node/records/payloads.h"
#include "node/records/record.h"
#include "node/records/trust.h"
#include "storage/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace meshdeploy::security {

// Intents whose creator starts with this were written by a node (verify() below).
inline constexpr std::string_view node_intent_prefix = "host:";

// An action on a resource, as written in grant patterns ("deploy:app/web/prod").
struct permission {
  std::string action;    // define | deploy | stop | read
  std::string resource;  // app/APP | app/APP/GROUP | config/NAME

  friend bool operator==(const permission&, const permission&) = default;
};

// "ACTION:RESOURCE", e.g. "deploy:app/web/prod".
std::string to_string(const permission& p);

// The grant permission an operator needs to write a record carrying `p`:
//   application -> define app/APP        group    -> define app/APP/GROUP
//   config      -> define config/NAME    revision -> define app/APP
//   intent      -> deploy app/APP/GROUP  stop, exclude -> stop app/APP/GROUP
// nullopt for grant (admin-signed), approval, progress (the host's key) and host (self-signed).
std::optional<permission> required_permission(const records::payload& p);

// True when `pattern` ("ACTION:RESOURCE") allows `action` on `resource`. The pattern's
// action is an exact action or '*'; in its resource, '*' matches any run of characters,
// '/' included ("deploy:app/web/*" allows deploy on app/web/prod; "define:app/*" allows
// app/web and app/web/g; "*:*" allows everything). A pattern without ':' matches nothing.
bool pattern_matches(std::string_view pattern, std::string_view action, std::string_view resource);

// True when the grant is not revoked and one of its patterns allows `p`.
bool grant_allows(const records::grant_payload& g, const permission& p);

// Checks a pattern an admin is about to grant (the CLI calls this): one ':', a known action
// (define, deploy, stop, read or *), and a non-empty resource that can match something
// (starts with app/, config/ or '*', or is a prefix of those before a '*').
// Errors: records::errc::schema naming the pattern and the problem.
result<void> validate_pattern(std::string_view pattern);

// Verifies a record received from anywhere (gossip, sync, the API). In order:
//  1. the signature under r.writer (bad_signature);
//  2. the payload decodes as r.type (malformed, too_large, schema);
//  3. r.key == expected_key(payload) and immutable types have version 1 (schema);
//  4. authority:
//     grant: signed by `admin` (permission_denied);
//     operator records: the writer's grant in effect at r.time_ms, i.e. the newest grant
//       version whose record time_ms <= r.time_ms, or the oldest known version when none is
//       that old, must allow required_permission(payload). No grant known: unknown_writer
//       (the caller keeps the record pending and retries when grants arrive). Revoked or not
//       allowed: permission_denied;
//     approval, progress: r.writer == trust.host_key(payload.host) (unknown_writer when the
//       host is unknown, permission_denied when it is another key);
//     host: r.writer == payload.key (the store keeps the first binding);
//     node-written intents (creator "host:NAME", docs/rollout.md): signed by host NAME's key;
//       without rollback_of (a catch-up) the targets are exactly [NAME]; with it (an automatic
//       rollback) NAME is one of the targets and the group has auto-rollback on
//       (trust.group_auto_rollback; unknown_writer while the group is unknown). Limit: the
//       verifier does not check the revision is one the group ran successfully.
// Every message starts "record TYPE/KEY vVERSION by WRITER8: " (WRITER8: the first 8 hex
// digits of the writer key). Returns the decoded payload.
result<records::payload> verify(const records::record& r, const records::trust_source& trust,
                                const records::public_key& admin);

// The API-side check for a record an operator submits through this node: verify(), and for
// operator records also the NEWEST known grant of the writer must allow the record
// ("permission denied: operator alice lacks deploy:app/web/prod"), and the record's time must
// be within max_clock_skew_ms of `now_ms` (errc::stale, "clock skew ..."). Grants, host,
// approval and progress records get verify() only (an admin signs grants offline, possibly
// long before they are submitted).
inline constexpr std::int64_t max_clock_skew_ms = 5 * 60 * 1000;
result<void> check_submission(const records::record& r, const records::trust_source& trust,
                              const records::public_key& admin, std::int64_t now_ms);

}  // namespace meshdeploy::security

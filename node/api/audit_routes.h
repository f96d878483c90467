// The audit log's HTTP routes (docs/api.md "Audit", docs/audit.md):
//   GET /v1/audit?since=T&limit=N  -> {"entries": [entry...], "truncated": bool, "unreadable": n}
//   GET /v1/audit/verify           -> the verification document (security::to_json)
// `since` is RFC 3339 ("2026-01-02T03:04:05Z", fractions and offsets allowed) or
// milliseconds since the Unix epoch; default 0 (everything). `limit` is 1..10000,
// default 100; when more entries match, the newest `limit` are returned.
// Bad parameters answer 400 InvalidArgument naming the parameter; other methods on
// these paths 405.
#pragma once

#include "node/api/router.h"
#include "node/security/audit.h"
#include "storage/result.h"

#include <cstdint>
#include <string_view>

namespace meshdeploy::api {

inline constexpr std::size_t audit_default_limit = 100;
inline constexpr std::size_t audit_max_limit = 10000;

// A handler for router::add_route_handler answering the two routes above and
// nothing else (std::nullopt). `log` must outlive the handler. Thread-safe.
router::route_handler audit_routes(const security::audit_log& log);

// Parses a `since` value: an RFC 3339 date-time or a non-negative integer of
// milliseconds since the Unix epoch. Errors: deploy::errc::invalid_argument
// naming the value and the expected forms.
result<std::int64_t> parse_since(std::string_view s);

}  // namespace meshdeploy::api

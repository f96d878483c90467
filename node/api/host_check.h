// The Host-header check against DNS rebinding (docs/security.md, docs/operations.md
// "api_allowed_host"): a page on evil.example whose name an attacker points at 127.0.0.1 makes
// the browser send `Host: evil.example`; the API, the console and the AWS front ends answer only
// requests whose Host is an IP literal, localhost, or a name the operator allowed.
//
// Thread safety: pure functions.
#pragma once

#include "node/api/router.h"

#include <span>
#include <string>
#include <string_view>

namespace meshdeploy::api {

// True when `host` (a Host header's value) is acceptable: an IPv4 literal or a bracketed IPv6
// literal, `localhost` or a name under it (any case, optional trailing dot; RFC 6761 keeps them on
// loopback), or one of `allowed` (names compared
// without case, a trailing dot ignored), each with or without ":PORT". Anything else, including
// an empty or malformed value, is refused.
bool host_allowed(std::string_view host, std::span<const std::string> allowed);

// True when `name` is fit for the allowed-hosts list: a DNS name (letters, digits, '-', '.';
// no port, no scheme), at most 253 bytes.
bool valid_allowed_host(std::string_view name);

// The answer to a refused request: 421 Misdirected Request, {"error": {"code":
// "MisdirectedRequest", "message": ...}} naming the Host received (escaped by the JSON writer)
// and the node setting that allows more names.
api_response misdirected_host(std::string_view host);

}  // namespace meshdeploy::api

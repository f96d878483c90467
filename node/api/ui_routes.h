// The read-only web console (docs/console.md): static HTML/CSS/JS embedded in the binary
// (node/api/ui_assets.h) that reads the node's JSON API from the browser.
//
//   GET /                 -> 302 to /ui/
//   GET /ui               -> 301 to /ui/
//   GET /ui/              -> index.html
//   GET /ui/NAME          -> the embedded file NAME (index.html, console.js, console.css)
//   GET /ui/anything-else -> 404 (text/plain)
//   other methods on /ui/... -> 405 with Allow: GET
//
// Every answer carries a Content-Security-Policy of `default-src 'self'` (no inline script, no
// other origin), nosniff, no referrer and no framing. Files are sent with `Cache-Control:
// no-cache` and a strong ETag from their content: a browser revalidates on each load and gets
// 304 (empty body) while the binary has not changed (the request's If-None-Match).
#pragma once

#include "node/api/router.h"

namespace meshdeploy::api {

inline constexpr const char* ui_content_security_policy =
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// A handler for router::add_route_handler answering the routes above and nothing else
// (std::nullopt). Stateless and thread-safe.
router::route_handler ui_routes();

}  // namespace meshdeploy::api

#include "node/api/ui_routes.h"

#include "node/api/ui_assets.h"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

namespace meshdeploy::api {
namespace {

api_response with_ui_headers(api_response r) {
  r.headers.emplace_back("Content-Security-Policy", ui_content_security_policy);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  return r;
}

api_response plain(unsigned status, std::string body) {
  api_response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  return with_ui_headers(std::move(r));
}

api_response redirect(unsigned status, const char* location) {
  api_response r = plain(status, std::string("see ") + location + "\n");
  r.headers.emplace_back("Location", location);
  return r;
}

// True when an If-None-Match value ("*", or a comma-separated list of entity tags, weak ones
// included) matches `etag` (RFC 9110 13.1.2 uses the weak comparison for it).
bool etag_matches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view tag = header.substr(0, comma);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

std::optional<api_response> handle(const api_request& req) {
  const std::string path = parse_target(req.target).path;
  if (path == "/") {
    if (req.method != "GET") return std::nullopt;  // the API's own 404
    return redirect(302, "/ui/");
  }
  if (path != "/ui" && !path.starts_with("/ui/")) return std::nullopt;
  if (req.method != "GET") {
    api_response r = plain(405, "the console is read-only: only GET\n");
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  if (path == "/ui") return redirect(301, "/ui/");
  // Names are matched exactly against the embedded list, so no path can reach anything else
  // ("/ui/../x", "/ui/a/b" and encoded forms are simply unknown names).
  std::string_view name = std::string_view(path).substr(4);
  if (name.empty()) name = "index.html";
  const auto assets = ui_assets();
  const auto it =
      std::find_if(assets.begin(), assets.end(), [&](const ui_asset& a) { return a.name == name; });
  if (it == assets.end()) return plain(404, "no such console page\n");
  api_response r;
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("ETag", std::string(it->etag));
  if (const std::string* inm = find_header(req.headers, "If-None-Match");
      inm && etag_matches(*inm, it->etag)) {
    r.status = 304;
    r.content_type = std::string(it->content_type);
    return with_ui_headers(std::move(r));
  }
  r.content_type = std::string(it->content_type);
  r.body = std::string(it->body);
  return with_ui_headers(std::move(r));
}

}  // namespace

router::route_handler ui_routes() { return handle; }

}  // namespace meshdeploy::api

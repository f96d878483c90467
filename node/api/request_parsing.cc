// The definitions of router.h's request helpers (target and path splitting, percent decoding,
// JSON bodies, router::is_upload): apart from the routes so that the HTTP request fuzz target
// (tests/fuzz/http_request_fuzz.cc) links them without the registry and deployer.
#include "node/api/router.h"
#include "node/api/url.h"
#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace meshdeploy::api {

using nlohmann::json;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> path_segments(std::string_view path) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < path.size()) {
    if (path[pos] == '/') {
      ++pos;
      continue;
    }
    std::size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    out.push_back(percent_decode(path.substr(pos, end - pos), true));
    pos = end;
  }
  return out;
}

result<json> parse_body(const api_request& req) {
  auto j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(deploy::errc::invalid_argument, "request body is not a JSON object");
  }
  return j;
}

result<std::string> str_field(const json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) {
      return make_error(deploy::errc::invalid_argument, fmt::format("field '{}' is required", key));
    }
    return std::string();
  }
  if (!it->is_string()) {
    return make_error(deploy::errc::invalid_argument,
                      fmt::format("field '{}' must be a string", key));
  }
  return it->get<std::string>();
}

parsed_target parse_target(std::string_view target) {
  parsed_target t;
  const auto q = target.find('?');
  t.path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) return t;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    if (!pair.empty()) {
      t.query[percent_decode(pair.substr(0, eq), true)] =
          eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), true);
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return t;
}

bool router::is_upload(std::string_view method, std::string_view target) {
  return method == "POST" && parse_target(target).path == "/v1/revisions";
}

}  // namespace meshdeploy::api

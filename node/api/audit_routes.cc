#include "node/api/audit_routes.h"

#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <limits>
#include <optional>

namespace meshdeploy::api {
namespace {

using nlohmann::json;

error bad_since(std::string_view s, std::string_view why) {
  return make_error(deploy::errc::invalid_argument,
                    fmt::format("since '{}' is not RFC 3339 (2026-01-02T03:04:05Z) or "
                                "milliseconds since the epoch: {}",
                                s, why));
}

// Reads exactly `n` decimal digits at `pos`, advancing it.
std::optional<int> digits(std::string_view s, std::size_t& pos, std::size_t n) {
  if (s.size() - pos < n) return std::nullopt;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  pos += n;
  return v;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

unsigned days_in_month(int y, int m) {
  static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

result<std::int64_t> parse_rfc3339(std::string_view s) {
  std::size_t pos = 0;
  const auto year = digits(s, pos, 4);
  if (!year || !expect(s, pos, '-')) return bad_since(s, "expected YYYY-");
  const auto month = digits(s, pos, 2);
  if (!month || !expect(s, pos, '-')) return bad_since(s, "expected MM-");
  const auto day = digits(s, pos, 2);
  if (!day) return bad_since(s, "expected DD");
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')) {
    return bad_since(s, "expected T after the date");
  }
  ++pos;
  const auto hour = digits(s, pos, 2);
  if (!hour || !expect(s, pos, ':')) return bad_since(s, "expected HH:");
  const auto minute = digits(s, pos, 2);
  if (!minute || !expect(s, pos, ':')) return bad_since(s, "expected MM:");
  const auto second = digits(s, pos, 2);
  if (!second) return bad_since(s, "expected SS");
  if (*month < 1 || *month > 12 || *day < 1 ||
      static_cast<unsigned>(*day) > days_in_month(*year, *month) || *hour > 23 || *minute > 59 ||
      *second > 60) {
    return bad_since(s, "a field is out of range");
  }
  std::int64_t ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t n = 0;
    for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos, ++n) {
      if (n < 3) ms = ms * 10 + (s[pos] - '0');  // sub-millisecond digits are truncated
    }
    if (n == 0) return bad_since(s, "expected digits after '.'");
    for (; n < 3; ++n) ms *= 10;
  }
  std::int64_t offset_min = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-' || s[pos] == ' ')) {
    // ' ' is a '+' that was not percent-encoded in a query string.
    const int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    const auto oh = digits(s, pos, 2);
    if (!oh || !expect(s, pos, ':')) return bad_since(s, "expected an offset +HH:MM");
    const auto om = digits(s, pos, 2);
    if (!om || *oh > 23 || *om > 59) return bad_since(s, "expected an offset +HH:MM");
    offset_min = sign * (*oh * 60 + *om);
  } else {
    return bad_since(s, "expected Z or an offset +HH:MM");
  }
  if (pos != s.size()) return bad_since(s, "trailing characters");
  // A leap second (:60) counts as the first millisecond of the next minute.
  const std::int64_t secs =
      days_from_civil(*year, static_cast<unsigned>(*month), static_cast<unsigned>(*day)) * 86400 +
      *hour * 3600 + *minute * 60 + *second - offset_min * 60;
  return secs * 1000 + ms;
}

api_response method_not_allowed(const api_request& req) {
  return json_response(405,
                       json{{"error",
                             {{"code", "MethodNotAllowed"},
                              {"message", fmt::format("{} {} is not supported; use GET", req.method,
                                                      parse_target(req.target).path)}}}});
}

result<std::size_t> parse_limit(const std::map<std::string, std::string>& query) {
  auto it = query.find("limit");
  if (it == query.end()) return audit_default_limit;
  const std::string& s = it->second;
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < 1 || v > audit_max_limit) {
    return make_error(
        deploy::errc::invalid_argument,
        fmt::format("limit '{}' is not a whole number from 1 to {}", s, audit_max_limit));
  }
  return v;
}

}  // namespace

result<std::int64_t> parse_since(std::string_view s) {
  if (s.empty()) return bad_since(s, "empty");
  if (s.find_first_not_of("0123456789") == std::string_view::npos) {
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size()) return bad_since(s, "number too large");
    return v;
  }
  return parse_rfc3339(s);
}

router::route_handler audit_routes(const security::audit_log& log) {
  return [&log](const api_request& req) -> std::optional<api_response> {
    const parsed_target t = parse_target(req.target);
    if (t.path == "/v1/audit") {
      if (req.method != "GET") return method_not_allowed(req);
      std::int64_t since = 0;
      if (auto it = t.query.find("since"); it != t.query.end()) {
        auto s = parse_since(it->second);
        if (!s) return error_response(s.error());
        since = s.value();
      }
      auto limit = parse_limit(t.query);
      if (!limit) return error_response(limit.error());
      auto page = log.list(since, limit.value());
      if (!page) return error_response(page.error());
      json entries = json::array();
      for (const auto& e : page.value().entries) entries.push_back(security::to_json(e));
      return json_response(200, json{{"entries", std::move(entries)},
                                     {"truncated", page.value().truncated},
                                     {"unreadable", page.value().unreadable}});
    }
    if (t.path == "/v1/audit/verify") {
      if (req.method != "GET") return method_not_allowed(req);
      auto v = log.verify();
      if (!v) return error_response(v.error());
      return json_response(200, security::to_json(v.value()));
    }
    return std::nullopt;
  };
}

}  // namespace meshdeploy::api

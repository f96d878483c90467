#include "node/api/request_metrics.h"

#include <array>

namespace meshdeploy::api {

namespace {

// Every route the node's API serves (docs/api.md), as segments; "{x}" matches one segment,
// "{x...}" the rest (at least one).
constexpr std::array<std::string_view, 25> kPatterns{
    "/",
    "/metrics",
    "/ui",
    "/ui/",
    "/ui/{file...}",
    "/v1/health",
    "/v1/members",
    "/v1/apps",
    "/v1/apps/{name}",
    "/v1/groups",
    "/v1/groups/{app}/{name}",
    "/v1/groups/{app}/{name}/plan",
    "/v1/configs",
    "/v1/configs/{name}",
    "/v1/revisions",
    "/v1/deployments",
    "/v1/deployments/{id}",
    "/v1/deployments/{id}/logs",
    "/v1/records",
    "/v1/records/{type}",
    "/v1/records/{type}/{key...}",
    "/v1/keys",
    "/v1/keys/{operation}",
    "/v1/audit",
    "/v1/audit/verify",
};

bool matches(std::string_view pattern, std::string_view path) {
  if (pattern == "/" || path == "/") return pattern == path;
  while (!pattern.empty()) {
    if (path.empty() || path.front() != '/' || pattern.front() != '/') return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    const auto pe = pattern.find('/');
    const std::string_view pseg = pattern.substr(0, pe);
    const auto se = path.find('/');
    const std::string_view sseg = path.substr(0, se);
    if (pseg.ends_with("...}")) return !sseg.empty();
    if (pseg.starts_with('{')) {
      if (sseg.empty()) return false;
    } else if (pseg != sseg) {
      return false;
    }
    pattern.remove_prefix(pe == std::string_view::npos ? pattern.size() : pe);
    path.remove_prefix(se == std::string_view::npos ? path.size() : se);
  }
  return path.empty();
}

std::string_view method_label(std::string_view m) {
  for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "DELETE"}) {
    if (m == known) return known;
  }
  return "other";
}

std::string code_label(unsigned status) {
  if (status < 100 || status > 599) return "other";
  return std::to_string(status / 100) + "xx";
}

}  // namespace

std::string_view route_pattern(std::string_view path) {
  for (auto p : kPatterns) {
    if (matches(p, path)) return p;
  }
  return "other";
}

void request_metrics::observe(std::string_view method, std::string_view target, unsigned status,
                              double seconds) {
  const std::string_view path = target.substr(0, target.find('?'));
  observe_route(std::string(route_pattern(path)), method, status, seconds);
}

void request_metrics::observe_route(std::string route, std::string_view method, unsigned status,
                                    double seconds) {
  std::tuple<std::string, std::string, std::string> key{
      std::move(route), std::string(method_label(method)), code_label(status)};
  std::lock_guard lock(mu_);
  hist_.try_emplace(std::move(key), node::metrics::api_latency_buckets())
      .first->second.observe(seconds);
}

void request_metrics::observe_long_poll() {
  std::lock_guard lock(mu_);
  ++long_polls_;
}

void request_metrics::write(node::metrics::exposition& out) const {
  std::lock_guard lock(mu_);
  out.family("meshdeploy_api_request_duration_seconds", "histogram",
             "API requests by route pattern, method and status class: seconds from the "
             "request's header to its answer (long polls excluded).");
  for (const auto& [key, h] : hist_) {
    h.write(
        out, "meshdeploy_api_request_duration_seconds",
        {{"route", std::get<0>(key)}, {"method", std::get<1>(key)}, {"code", std::get<2>(key)}});
  }
  out.family("meshdeploy_api_long_polls_total", "counter",
             "Long polls answered (deployment watches that waited; not in "
             "meshdeploy_api_request_duration_seconds).");
  out.sample("meshdeploy_api_long_polls_total", {}, long_polls_);
}

}  // namespace meshdeploy::api

// API request latency for GET /metrics (docs/operations.md "Metrics"):
// meshdeploy_api_request_duration_seconds{route, method, code} where `route` is the route's
// pattern ("/v1/deployments/{id}"), never the raw path, `method` one of the methods the API
// serves (else "other") and `code` the status class (2xx, 3xx, 4xx, 5xx). Long polls (a
// deployment watch that parked, `GET /v1/deployments/{id}?waitVersion=N`) are left out of the
// histogram, whose point is how fast the node answers, and counted in
// meshdeploy_api_long_polls_total instead.
//
// Thread safety: any thread (one mutex).
#pragma once

#include "node/metrics/exposition.h"

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

namespace meshdeploy::api {

// The pattern of the route `path` (no query) belongs to: "/v1/apps/{name}", "/ui/{file}", ...;
// "other" for a path no route serves. Pure; the set of results is fixed.
std::string_view route_pattern(std::string_view path);

class request_metrics {
 public:
  // One answered request: `target` as received (path and query), the answer's status, and the
  // seconds from the end of the request's header to the answer being ready.
  void observe(std::string_view method, std::string_view target, unsigned status, double seconds);
  // The same with the route label chosen by the caller (server_options::metrics_route: a front
  // end's operation, "CodeDeploy:CreateDeployment"); it must come from a small fixed set.
  void observe_route(std::string route, std::string_view method, unsigned status, double seconds);
  // One long poll answered (after waiting; not in the histogram).
  void observe_long_poll();

  // Appends meshdeploy_api_request_duration_seconds and meshdeploy_api_long_polls_total.
  void write(node::metrics::exposition& out) const;

 private:
  mutable std::mutex mu_;
  // (route, method, code) -> latencies. GUARDED_BY(mu_)
  std::map<std::tuple<std::string, std::string, std::string>, node::metrics::histogram> hist_;
  std::uint64_t long_polls_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace meshdeploy::api

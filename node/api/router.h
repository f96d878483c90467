// The node's HTTP/JSON API as a pure request -> response function, with no
// sockets, so it is tested directly. node/api/server.h puts it on the wire.
// Routes and shapes: docs/api.md.
//
// Thread safety: `handle` may be called from any thread; it only touches the
// registry and deployer, which are thread-safe. A `deferred` response it returns (a log read
// from another host) must be started on the io thread, as api::server does.
#pragma once

#include "node/api/headers.h"
#include "node/deploy/local_deployer.h"
#include "node/deploy/log_service.h"
#include "node/deploy/registry.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace meshdeploy::api {

struct api_request {
  std::string method;               // "GET", "POST", "DELETE"
  std::string target;               // path and query, e.g. "/v1/deployments?app=web"
  std::string body;                 // JSON bodies
  std::filesystem::path body_file;  // uploads (POST /v1/revisions) are streamed to a file
  // The request's header fields as received, in order (find_header looks one up): SigV4 in
  // node/aws/ reads them all, the console's files If-None-Match.
  header_list headers;
};

struct api_response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra header fields (name, value), e.g. X-Meshdeploy-Log-Truncated.
  std::vector<std::pair<std::string, std::string>> headers;
  // Long poll: when set, the server waits until this deployment's status
  // changes or `wait_timeout` passes, then calls `handle` again.
  std::optional<std::string> wait_for_deployment;
  std::chrono::milliseconds wait_timeout{0};
  // Asynchronous answer, for routes that ask another node: when set, the server calls it once,
  // on the io thread, with `reply`, which the route must call once, on the io thread, with the
  // real response (status, body and the rest of this one are ignored). The server answers
  // `timeout_answer` (when set; else 504 HostTimedOut) itself if `reply` is not called within
  // `wait_timeout` (a backstop: the route has its own, shorter deadline, or names the answer
  // its protocol gives for a timeout), and 503 when it shuts down meanwhile.
  using reply_fn = std::function<void(api_response)>;
  std::function<void(reply_fn reply)> deferred;
  std::shared_ptr<const api_response> timeout_answer;
};

struct node_info {
  std::string name;
  std::string version;
  std::vector<deploy::tag> tags;
  std::string install_root;
};

// Splits "/a/b?x=1&y=%20" into a path and decoded query parameters.
struct parsed_target {
  std::string path;
  std::map<std::string, std::string> query;
};
parsed_target parse_target(std::string_view target);

class router {
 public:
  // `reg` and `deployer` must outlive the router.
  router(deploy::registry& reg, deploy::local_deployer& deployer, node_info info);

  api_response handle(const api_request& req);

  // Supplies GET /v1/members (the gossip membership as JSON). Without one,
  // the node answers with itself alone and "gossip": "disabled".
  void set_members_provider(std::function<nlohmann::json()> provider);
  // Supplies GET /metrics (Prometheus text exposition format).
  void set_metrics_provider(std::function<std::string()> provider);
  // Reads another host's log for GET /v1/deployments/ID/logs?host=H when H is not this node
  // (deploy::log_service::fetch; called on the io thread, `done` called once on it). Without
  // one, only this node's own log can be read.
  using remote_log_fn =
      std::function<void(const std::string& host, const std::string& deployment_id,
                         const std::string& event, deploy::log_service::done_fn done)>;
  void set_remote_log_reader(remote_log_fn reader);

  // Adds routes owned by another module (keys, records, ...). Handlers are tried in the order
  // added, before the built-in routes; the first that returns a response answers. Call before
  // the server starts; handlers must be thread-safe like `handle`.
  using route_handler = std::function<std::optional<api_response>(const api_request&)>;
  void add_route_handler(route_handler h);

  // True for requests whose body is a bundle to stream to disk.
  static bool is_upload(std::string_view method, std::string_view target);

 private:
  deploy::registry& reg_;
  deploy::local_deployer& deployer_;
  node_info info_;
  std::function<nlohmann::json()> members_;
  std::function<std::string()> metrics_;
  remote_log_fn remote_logs_;
  std::vector<route_handler> extra_routes_;
};

// Helpers shared by the route modules (router.cc, record_routes.cc, ...).
api_response json_response(unsigned status, const nlohmann::json& j);
// 400 InvalidArgument with `message`.
api_response bad_request(std::string message);
// Splits "/v1/deployments/d-1/logs" into {"v1","deployments","d-1","logs"}, percent-decoded.
std::vector<std::string> path_segments(std::string_view path);
// Reads a JSON object body; the error (invalid_argument) names what is wrong.
result<nlohmann::json> parse_body(const api_request& req);
// Reads a string field, checking its type; "" when absent and not required.
result<std::string> str_field(const nlohmann::json& j, const char* key, bool required);

// A log as a text/plain answer; a truncated one carries the header X-Meshdeploy-Log-Truncated
// with the whole log's size in bytes (the body is its last bytes).
api_response log_response(deploy::log_text t);

// Maps an error to an HTTP status and a JSON error document
// {"error": {"code": "NotFound", "message": "..."}}.
api_response error_response(const error& e);

}  // namespace meshdeploy::api

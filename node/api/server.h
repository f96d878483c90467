// Serves node/api/router.h over HTTP/1.1 (Boost.Beast), on the node's
// io_context. Uploads are streamed to files under `upload_dir`; the handling
// of an upload (hashing a large bundle) runs on `pool`, everything else on the
// io thread. Long polls (router says "wait") park on a timer that
// `notify(deployment_id)` wakes; deferred answers (a route that asks another node, e.g. a log
// read) park until the route replies, at most the response's wait_timeout.
//
// Thread safety: construct, start and stop on the io thread; `notify` may be
// called from any thread (it posts to the io thread).
#pragma once

#include "node/api/request_metrics.h"
#include "node/api/router.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace meshdeploy::api {

struct server_options {
  std::string bind = "127.0.0.1:7947";  // HOST:PORT; port 0 picks a free port
  std::filesystem::path upload_dir;     // temp files for uploads
  std::uint64_t max_upload_bytes = 4ull << 30;
  std::uint64_t max_body_bytes = 1 << 20;  // JSON bodies
  // Handle every request on the pool, not only uploads: for a router whose routes hash large
  // bodies (the S3 front end, node/aws/s3_api.h). Such a router must not answer with long polls or
  // deferred answers (the pool path answers with the first response as is).
  bool handle_on_pool = false;
  // Names accepted in the Host header besides IP literals and localhost (node/api/host_check.h,
  // against DNS rebinding); a request with any other Host is answered 421 and its connection
  // closed. An HTTP/1.0 request without Host is accepted (no browser sends one).
  std::vector<std::string> allowed_hosts;
  // When set, every answered request's latency goes there (long polls are counted apart). Must
  // outlive the server.
  request_metrics* metrics = nullptr;
  // The `route` label of a request in `metrics`, from a small fixed set (an AWS front end's
  // operation names); "" or no function: the native route's pattern (route_pattern).
  std::function<std::string(const api_request&)> metrics_route;
};

class server {
 public:
  // `r` and `pool` must outlive the server.
  server(boost::asio::io_context& io, boost::asio::thread_pool& pool, router& r,
         server_options options);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds and starts accepting. Error names the address.
  result<void> start();
  // The bound endpoint (after start).
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Stops accepting and cancels parked long polls.
  void stop();
  // Wakes long polls waiting on this deployment. Any thread.
  void notify(const std::string& deployment_id);

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

// Parses "HOST:PORT" ("[::1]:80" for IPv6). Error names the text.
result<boost::asio::ip::tcp::endpoint> parse_endpoint(std::string_view text);

}  // namespace meshdeploy::api

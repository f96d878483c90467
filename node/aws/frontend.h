// The AWS-compatible front ends of a node (docs/aws-compatibility.md): CodeDeploy's JSON 1.1
// API on the node's API port (and, with --aws-api, on an address of its own) and the S3 subset
// on --s3-api. Composes node/aws/codedeploy_api.h and node/aws/s3_api.h with their own
// api::server instances.
//
// Threading: construct, start and stop on the io thread, like api::server.
#pragma once

#include "node/api/router.h"
#include "node/api/server.h"
#include "node/aws/access_keys.h"
#include "node/aws/object_store.h"
#include "node/records/store.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace meshdeploy::aws {

struct frontend_options {
  std::filesystem::path credentials;  // --aws-credentials; empty: the AWS API is off
  std::string aws_api;                // --aws-api HOST:PORT; "" = only on the node's API port
  std::string s3_api;                 // --s3-api HOST:PORT; "" = no S3
  std::filesystem::path data_dir;     // <data-dir>; objects go to <data-dir>/aws
  std::string node_name;
  // Host names both front ends accept besides IP literals and localhost (the node setting
  // api-allowed-host; node/api/host_check.h).
  std::vector<std::string> allowed_hosts;
  // Where both front ends' request latencies go (by operation: codedeploy_route, s3_route);
  // nullptr: not measured. Must outlive the front end.
  api::request_metrics* metrics = nullptr;
};

class frontend {
 public:
  // `native`, `reg`, `deployer` and `store` must outlive the front end.
  frontend(boost::asio::io_context& io, boost::asio::thread_pool& pool, api::router& native,
           deploy::registry& reg, deploy::local_deployer& deployer, const records::store& store,
           api::node_info info, frontend_options options);
  ~frontend();
  frontend(const frontend&) = delete;
  frontend& operator=(const frontend&) = delete;

  // Loads the credentials, adds the CodeDeploy routes to `native` and starts the --aws-api and
  // --s3-api servers. Without credentials it does nothing (and refuses --aws-api/--s3-api).
  // Errors: the credentials file (node/aws/access_keys.h), a bad or busy address.
  result<void> start();
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace meshdeploy::aws

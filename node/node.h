// The meshdeploy daemon: `meshdeploy node run`. Composes storage, the agent,
// the deployment service and the API on one io_context thread plus a small
// worker pool, and runs until SIGINT or SIGTERM.
#pragma once

#include "node/agent/archive.h"
#include "node/deploy/registry.h"
#include "node/mesh/gossip_driver.h"

#include <filesystem>
#include <string>
#include <vector>

namespace meshdeploy::node {

struct node_options {
  std::string name;  // default: the host name
  std::filesystem::path data_dir = "/var/lib/meshdeploy";
  std::string api = "127.0.0.1:7947";  // HOST:PORT; port 0 picks a free one
  // Host header names the API, console and AWS front ends answer to besides IP literals and
  // localhost (against DNS rebinding; node/api/host_check.h, docs/operations.md).
  std::vector<std::string> api_allowed_hosts;
  std::vector<deploy::tag> tags;
  std::filesystem::path install_root = "/";
  std::string log_level = "info";  // trace, debug, info, warn, error
  // "text" (spdlog's default lines) or "json": one JSON object per line with time, level,
  // message and the deployment/host ids the message names (docs/operations.md).
  std::string log_format = "text";
  agent::extract_limits bundle_limits;
  // Required: the cluster keyring (gossip encryption, docs/gossip.md) and the cluster admin's
  // public key (grants must carry its signature, docs/security.md).
  std::filesystem::path keyring_file;
  std::filesystem::path admin_pub_file;
  // Admin-signed grant record files to load at start (e.g. the one `cluster init` makes).
  std::vector<std::filesystem::path> grant_files;
  // Retention of deployment records (intents with their approvals, progress, stops and
  // excludes): older than this many days and beyond the newest `retention_per_group` of their
  // group, they are pruned (hourly) and remembered as tombstones (docs/replication.md).
  std::uint32_t retention_days = 30;
  std::uint32_t retention_per_group = 50;
  // A target waiting at the rollout gate with no progress in the deployment for this long
  // ends its part as timed out, failing the deployment (docs/rollout.md); 0 never.
  std::uint32_t progress_deadline_s = 65 * 60;
  // Catch-up (CodeDeploy's Auto Scaling behaviour): a host matching a group deploys the group's
  // last successful revision to itself, judged this long after start (records arrive first).
  bool catch_up = true;
  std::uint32_t catch_up_delay_s = 10;
  // Swarm (bundle distribution, docs/swarm.md): piece bytes per second this node sends and
  // receives at most; 0 = unlimited.
  std::uint64_t max_upload_rate = 0;
  std::uint64_t max_download_rate = 0;
  mesh::gossip_options gossip;  // refuse bundles over these (size bombs)
  // The AWS-compatible API (docs/aws-compatibility.md): access keys (--aws-credentials), an
  // optional CodeDeploy-only address (--aws-api) and the S3 subset's address (--s3-api).
  std::filesystem::path aws_credentials;
  std::string aws_api;
  std::string s3_api;
};

// Runs the node until a signal arrives. Returns the process exit code
// (0 after a clean shutdown, 2 for bad options, 1 when start-up fails).
// Refuses to start without a keyring and the admin public key.
// Writes the bound API address to <data-dir>/api.addr once it listens.
int run_node(const node_options& options);

// The version string printed by `meshdeploy --version` and /v1/health.
const char* version();

}  // namespace meshdeploy::node

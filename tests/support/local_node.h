// A node's local parts for tests of node/api and node/aws, without sockets or gossip: a real
// RocksDB in `dir` with every column family the API reads, the record store, the registry, the
// agent's executor, the local deployer and an API router (no route handlers added: each test adds
// the ones it exercises).
#pragma once

#include "node/agent/executor.h"
#include "node/api/router.h"
#include "node/deploy/local_deployer.h"
#include "node/deploy/registry.h"
#include "node/records/store.h"
#include "storage/db.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace meshdeploy::test {

struct local_node {
  // Host `name` with `tags`; data under `dir` (db/, revisions/), installs under `dir`/root.
  explicit local_node(const std::filesystem::path& dir, std::string name = "h1",
                      std::vector<deploy::tag> tags = {{"role", "web"}});

  std::unique_ptr<storage::db> db;
  std::unique_ptr<records::store> store;
  std::unique_ptr<deploy::registry> reg;
  std::unique_ptr<agent::executor> exec;
  std::unique_ptr<deploy::local_deployer> deployer;
  std::unique_ptr<api::router> router;
};

}  // namespace meshdeploy::test

#include "tests/support/local_node.h"

#include "node/agent/host_state.h"
#include "node/agent/journal.h"

#include <utility>

namespace meshdeploy::test {

local_node::local_node(const std::filesystem::path& dir, std::string name,
                       std::vector<deploy::tag> tags) {
  auto families = deploy::registry::column_families();
  families.push_back(agent::journal::column_family);
  families.push_back(agent::host_state_store::column_family);
  for (auto& f : records::store::column_families()) families.push_back(f);
  db = storage::db::open({dir / "db", families}).value();
  store = records::store::open(*db).value();
  reg = std::make_unique<deploy::registry>(*db, *store, dir / "revisions");
  agent::agent_options o;
  o.data_dir = dir;
  o.install_root = dir / "root";
  exec = std::make_unique<agent::executor>(*db, o);
  deployer = std::make_unique<deploy::local_deployer>(*reg, *exec,
                                                      deploy::host_identity{name, std::move(tags)});
  router = std::make_unique<api::router>(*reg, *deployer, api::node_info{name, "0.1.0", {}, "/"});
}

}  // namespace meshdeploy::test

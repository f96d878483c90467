#include "node/node.h"

#include "node/agent/executor.h"
#include "node/agent/host_state.h"
#include "node/agent/journal.h"
#include "node/api/keys_routes.h"
#include "node/api/router.h"
#include "node/api/server.h"
#include "node/deploy/local_deployer.h"
#include "node/mesh/gossip_driver.h"
#include "node/mesh/keyring_store.h"
#include "storage/db.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>
#include <unistd.h>

namespace meshdeploy::node {

namespace fs = std::filesystem;

const char* version() { return "0.1.0"; }

int run_node(const node_options& in) {
  node_options o = in;
  if (o.name.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    o.name = host;
  }
  spdlog::set_level(spdlog::level::from_str(o.log_level));
  if (sodium_init() < 0) {
    spdlog::critical("libsodium failed to initialise");
    return 1;
  }
  std::error_code ec;
  fs::create_directories(o.data_dir, ec);
  if (ec) {
    spdlog::critical("cannot create data dir {}: {}", o.data_dir.string(), ec.message());
    return 1;
  }
  o.data_dir = fs::absolute(o.data_dir);
  o.install_root = fs::absolute(o.install_root);

  std::vector<std::string> families = deploy::registry::column_families();
  families.push_back(agent::journal::column_family);
  families.push_back(agent::host_state_store::column_family);
  auto db = storage::db::open({o.data_dir / "db", families});
  if (!db) {
    spdlog::critical("cannot open the database in {}: {} (is another node using this data dir?)",
                     (o.data_dir / "db").string(), db.error().message);
    return 1;
  }

  deploy::registry reg(*db.value(), o.data_dir / "revisions");
  agent::agent_options ao;
  ao.data_dir = o.data_dir;
  ao.install_root = o.install_root;
  ao.limits = o.bundle_limits;
  agent::executor exec(*db.value(), ao);
  deploy::local_deployer deployer(reg, exec, deploy::host_identity{o.name, o.tags});
  if (auto r = deployer.recover(); !r) {
    spdlog::critical("crash recovery failed: {}", r.error().message);
    return 1;
  }

  boost::asio::io_context io(1);
  boost::asio::thread_pool pool(2);
  api::router router(reg, deployer,
                     api::node_info{o.name, version(), o.tags, o.install_root.string()});
  api::server server(io, pool, router, api::server_options{o.api, o.data_dir / "tmp"});
  if (auto s = server.start(); !s) {
    spdlog::critical("{}", s.error().message);
    return 2;
  }
  deployer.set_on_change([&server](const std::string& id) { server.notify(id); });

  std::unique_ptr<mesh::gossip_driver> gossip;
  if (!o.keyring_file.empty()) {
    std::ifstream in(o.keyring_file);
    if (!in) {
      spdlog::critical("cannot read keyring {}", o.keyring_file.string());
      return 2;
    }
    std::stringstream text;
    text << in.rdbuf();
    auto ring = gossip::parse_keyring(text.str(), o.keyring_file.string());
    if (!ring) {
      spdlog::critical("{}", ring.error().message);
      return 2;
    }
    gossip::node_meta meta;
    meta.name = o.name;
    for (const auto& t : o.tags) meta.tags[t.key] = t.value;
    // The live keyring persisted by key rotation wins over --keyring (node/mesh/keyring_store.h).
    auto keys = mesh::combine_keyrings(o.data_dir / "keyring.json", ring.value());
    if (!keys) {
      spdlog::critical("{}", keys.error().message);
      return 2;
    }
    o.gossip.keyring_file = o.data_dir / "keyring.json";
    o.gossip.keyring_generation = keys.value().generation;
    o.gossip.removed_keys = keys.value().removed;
    gossip = std::make_unique<mesh::gossip_driver>(io, keys.value().ring, meta, o.gossip);
    if (auto g = gossip->start(); !g) {
      spdlog::critical("{}", g.error().message);
      return 2;
    }
    {
      const fs::path tmp = o.data_dir / "gossip.addr.tmp";
      std::ofstream(tmp) << gossip->local_address() << "\n";
      fs::rename(tmp, o.data_dir / "gossip.addr", ec);
    }
    spdlog::info("gossip on {} (cluster '{}'), joining {} seed(s)", gossip->local_address(),
                 o.gossip.cluster_id, o.gossip.join.size());
    router.set_metrics_provider([&gossip] { return gossip->prometheus_text(); });
    router.add_route_handler(
        api::keys_routes(*gossip, [&server](const std::string& id) { server.notify(id); }));
    router.set_members_provider([&gossip] {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& m : gossip->members()) {
        arr.push_back({{"name", m.meta.name},
                       {"address", m.meta.addr.to_string()},
                       {"status", gossip::to_string(m.state)},
                       {"incarnation", m.inc.value()},
                       {"tags", m.meta.tags}});
      }
      const auto& c = gossip->counters();
      return nlohmann::json{{"gossip", "enabled"},
                            {"members", std::move(arr)},
                            {"dropped",
                             {{"auth", c.dropped_auth},
                              {"replay", c.dropped_replay},
                              {"envelope", c.dropped_envelope}}}};
    });
  }

  const auto ep = server.local_endpoint();
  const std::string addr = fmt::format("{}:{}", ep.address().to_string(), ep.port());
  {
    const fs::path tmp = o.data_dir / "api.addr.tmp";
    std::ofstream(tmp) << addr << "\n";
    fs::rename(tmp, o.data_dir / "api.addr", ec);
  }
  spdlog::info("meshdeploy node '{}' ready: API on {}, data in {}, install root {}", o.name, addr,
               o.data_dir.string(), o.install_root.string());

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& e, int sig) {
    if (e) return;
    spdlog::info("signal {}: shutting down", sig);
    server.stop();
    deployer.set_on_change({});
    if (gossip) {
      // A graceful leave, then a moment for it to go out before the loop ends.
      gossip->leave();
      auto t = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(300));
      t->async_wait([&io, t](const boost::system::error_code&) { io.stop(); });
      return;
    }
    io.stop();
  });
  io.run();
  deployer.shutdown();
  pool.join();
  fs::remove(o.data_dir / "api.addr", ec);
  spdlog::info("meshdeploy node '{}' stopped", o.name);
  return 0;
}

}  // namespace meshdeploy::node

#include "node/node.h"

#include "node/agent/executor.h"
#include "node/agent/host_state.h"
#include "node/agent/journal.h"
#include "node/api/audit_routes.h"
#include "node/api/keys_routes.h"
#include "node/api/record_routes.h"
#include "node/api/router.h"
#include "node/api/server.h"
#include "node/api/ui_routes.h"
#include "node/aws/codedeploy_api.h"
#include "node/aws/frontend.h"
#include "node/deploy/local_deployer.h"
#include "node/deploy/log_service.h"
#include "node/deploy/mesh_deployer.h"
#include "node/log_format.h"
#include "node/mesh/gossip_driver.h"
#include "node/mesh/keyring_store.h"
#include "node/mesh/peer_snapshot.h"
#include "node/metrics/rollout_metrics.h"
#include "node/own_record_coalescer.h"
#include "node/paced_feed.h"
#include "node/record_service.h"
#include "node/records/errc.h"
#include "node/records/store.h"
#include "node/security/audit.h"
#include "node/security/identity.h"
#include "node/swarm_service.h"
#include "storage/db.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <unistd.h>

namespace meshdeploy::node {

namespace fs = std::filesystem;

const char* version() { return "0.1.0"; }

namespace {

// Creates `file` (empty) and makes it and its directory entry durable; false with errno set.
bool write_synced(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return false;
  const int dir = ::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return false;
  const bool dir_ok = ::fsync(dir) == 0;
  ::close(dir);
  return dir_ok;
}

result<std::string> read_text(const fs::path& file, const char* what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return make_error(records::errc::io, fmt::format("cannot read {} {}", what, file.string()));
  }
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Loads an admin-signed grant record file (--grant) into the record set.
result<void> load_grant(record_service& records, const fs::path& file) {
  MESH_TRY(auto bytes, read_text(file, "grant file"));
  auto r = records::decode(std::as_bytes(std::span(bytes.data(), bytes.size())));
  if (!r) return r.error().with_context(file.string());
  if (r.value().type != records::record_type::grant) {
    return make_error(records::errc::schema,
                      fmt::format("{}: a {} record, not a grant", file.string(),
                                  records::to_string(r.value().type)));
  }
  auto stored = records.publish(r.value());
  if (!stored) return stored.error().with_context(file.string());
  return ok();
}

}  // namespace

int run_node(const node_options& in) {
  node_options o = in;
  if (o.name.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    o.name = host;
  }
  set_log_format(o.log_format, o.name);
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

  if (o.keyring_file.empty() || o.admin_pub_file.empty()) {
    spdlog::critical(
        "a node needs the cluster keyring (--keyring FILE) and the admin public key (--admin-pub "
        "FILE); make them with: meshdeploy cluster init --dir DIR");
    return 2;
  }
  auto admin = security::load_public_key(o.admin_pub_file);
  if (!admin) {
    spdlog::critical("--admin-pub: {}", admin.error().message);
    return 2;
  }
  auto keyring_text = read_text(o.keyring_file, "keyring");
  if (!keyring_text) {
    spdlog::critical("{}", keyring_text.error().message);
    return 2;
  }
  auto ring = gossip::parse_keyring(keyring_text.value(), o.keyring_file.string());
  if (!ring) {
    spdlog::critical("{}", ring.error().message);
    return 2;
  }
  auto self_id = security::load_or_create_node_identity(o.data_dir, o.name);
  if (!self_id) {
    spdlog::critical("node key: {}", self_id.error().message);
    return 1;
  }

  std::vector<std::string> families = deploy::registry::column_families();
  families.push_back(agent::journal::column_family);
  families.push_back(agent::host_state_store::column_family);
  families.push_back(deploy::journal_store::column_family);
  families.push_back(security::audit_log::column_family);
  for (auto& f : records::store::column_families()) families.push_back(std::move(f));
  // An empty data dir (first start, or wiped): this host's own rollout records may live only on
  // its peers, so it enters no deployment until it has them (mesh_options::empty_data_dir). The
  // marker says so until then, also to the next start if this one ends before.
  const fs::path settling_marker = o.data_dir / "settling";
  const bool empty_data_dir = !fs::exists(o.data_dir / "db") || fs::exists(settling_marker);
  if (empty_data_dir && !o.gossip.join.empty() && !write_synced(settling_marker)) {
    spdlog::critical("cannot write {}: {}", settling_marker.string(), std::strerror(errno));
    return 1;
  }
  if (o.gossip.join.empty()) fs::remove(settling_marker, ec);  // no peers to wait for
  auto db = storage::db::open({o.data_dir / "db", families});
  if (!db) {
    spdlog::critical("cannot open the database in {}: {} (is another node using this data dir?)",
                     (o.data_dir / "db").string(), db.error().message);
    return 1;
  }
  auto store = records::store::open(*db.value());
  if (!store) {
    spdlog::critical("cannot open the record store: {}", store.error().message);
    return 1;
  }
  auto audit = security::audit_log::open(*db.value());
  if (!audit) {
    spdlog::critical("cannot open the audit log: {}", audit.error().message);
    return 1;
  }

  deploy::registry reg(*db.value(), *store.value(), o.data_dir / "revisions");
  agent::agent_options ao;
  ao.data_dir = o.data_dir;
  ao.install_root = o.install_root;
  ao.limits = o.bundle_limits;
  agent::executor exec(*db.value(), ao);
  deploy::local_deployer deployer(reg, exec, deploy::host_identity{o.name, o.tags});
  // Crash recovery: kill leftover hook processes of interrupted runs (never rerun a hook); the
  // mesh deployer reports them once the records are open (mesh_deployer::start).
  auto interrupted = exec.recover();
  if (!interrupted) {
    spdlog::critical("crash recovery failed: {}", interrupted.error().message);
    return 1;
  }

  boost::asio::io_context io(1);
  boost::asio::thread_pool pool(2);
  api::router router(reg, deployer,
                     api::node_info{o.name, version(), o.tags, o.install_root.string()});
  // GET /metrics: API latency per route, and the rollout as this node sees it (fed after
  // changes from the deploy timer below, read on the pool; docs/operations.md "Metrics").
  api::request_metrics api_stats;
  metrics::rollout_metrics rollout_stats(o.name, deploy::now_ms());
  api::server_options api_opts{o.api, o.data_dir / "tmp"};
  api_opts.allowed_hosts = o.api_allowed_hosts;
  api_opts.metrics = &api_stats;
  api_opts.metrics_route = aws::codedeploy_route;  // CodeDeploy calls on the API port, by operation
  api::server server(io, pool, router, api_opts);
  if (auto s = server.start(); !s) {
    spdlog::critical("{}", s.error().message);
    return 2;
  }
  deployer.set_on_change([&server, &rollout_stats](const std::string& id) {
    rollout_stats.mark_changed(id);
    server.notify(id);
  });

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
  // The members seen before a restart are seeds too: a node restarted without --join (the
  // first one, or one whose port changed) finds the cluster again (node/mesh/peer_snapshot.h).
  const fs::path peer_file = o.data_dir / "peers";
  {
    std::size_t skipped = 0;
    for (auto& p : mesh::load_peer_snapshot(peer_file, &skipped)) {
      if (std::find(o.gossip.join.begin(), o.gossip.join.end(), p) == o.gossip.join.end()) {
        o.gossip.join.push_back(std::move(p));
      }
    }
    if (skipped > 0) spdlog::warn("{}: skipped {} malformed line(s)", peer_file.string(), skipped);
  }
  auto gossip = std::make_unique<mesh::gossip_driver>(io, keys.value().ring, meta, o.gossip);

  // The live peers and the known members (live or dead, for plans), readable from any thread
  // (the replicator asks from API threads too).
  std::mutex peers_mu;
  std::vector<std::string> peers;                       // GUARDED_BY(peers_mu)
  std::vector<api::live_host> hosts{{o.name, o.tags}};  // GUARDED_BY(peers_mu)
  auto refresh_peers = [&] {
    std::vector<api::live_host> live{{o.name, o.tags}};
    for (const auto& m : gossip->members()) {
      if (m.meta.name == o.name || m.state == gossip::member_state::left) continue;
      api::live_host h{
          m.meta.name,
          {},
          m.state == gossip::member_state::alive || m.state == gossip::member_state::suspect};
      for (const auto& [k, v] : m.meta.tags) h.tags.push_back({k, v});
      live.push_back(std::move(h));
    }
    std::lock_guard lock(peers_mu);
    peers = gossip->live_peers();
    hosts = std::move(live);
  };
  // The live members' addresses: saved at once the first time this process sees a peer (a node
  // killed right after joining must still find the cluster again), then at most every 2 s.
  boost::asio::steady_timer snapshot_timer(io);
  bool snapshot_due = false;
  bool snapshot_saved = false;
  auto save_peers = [&] {
    std::vector<std::string> addrs;
    for (const auto& m : gossip->members()) {
      if (m.meta.name != o.name && m.state == gossip::member_state::alive) {
        addrs.push_back(m.meta.addr.to_string());
      }
    }
    if (addrs.empty()) return;
    if (!mesh::save_peer_snapshot(peer_file, addrs)) {
      spdlog::warn("cannot write {}", peer_file.string());
    }
    snapshot_saved = true;
  };
  auto save_peers_soon = [&] {
    if (!snapshot_saved) {
      save_peers();
      return;
    }
    if (snapshot_due) return;
    snapshot_due = true;
    snapshot_timer.expires_after(std::chrono::seconds(2));
    snapshot_timer.async_wait([&](const boost::system::error_code& e) {
      snapshot_due = false;
      if (!e) save_peers();
    });
  };

  record_service records(
      *store.value(), *audit.value(), self_id.value(),
      record_service_options{
          admin.value().second, o.name, records::replicator_config{.adaptive_fanout = true},
          [&io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); }},
      [&] {
        std::lock_guard lock(peers_mu);
        return peers;
      },
      [&io, &gossip](const std::string& peer, std::vector<std::byte> bytes) {
        boost::asio::post(io, [&gossip, peer, b = std::move(bytes)]() mutable {
          if (auto s = gossip->send_user(peer, mesh::user_type_records, std::move(b)); !s) {
            spdlog::debug("records: cannot send to {}: {}", peer, s.error().message);
          }
        });
      });
  // Bundles travel between nodes piece by piece, every node serving what it holds while it
  // downloads (node/swarm_service.h, docs/swarm.md).
  swarm::swarm_config swarm_cfg;
  swarm_cfg.max_upload_rate = o.max_upload_rate;
  swarm_cfg.max_download_rate = o.max_download_rate;
  swarm_cfg.seed =
      std::hash<std::string>{}(o.name) ^
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  swarm_service bundles(
      io, o.data_dir / "blobs", swarm_cfg,
      [&gossip](const std::string& peer, gossip::frame_buffer bytes) {
        if (auto s = gossip->send_user(peer, mesh::user_type_swarm, std::move(bytes)); !s) {
          spdlog::debug("swarm: cannot send to {}: {}", peer, s.error().message);
        }
      },
      [&reg, &o, &store](const std::string& app,
                         const std::string& id) -> std::optional<swarm::held_bundle> {
        auto rv = reg.get_revision(app, id);
        if (!rv || !reg.has_bundle(rv.value())) return std::nullopt;
        // The origin (where it was pushed) seeds each piece once (docs/swarm.md).
        bool origin = false;
        if (auto r = store.value()->get(records::record_type::revision, app + "/" + id);
            r && r.value()) {
          auto p = records::decode_payload(r.value()->type, r.value()->payload);
          if (p) {
            if (const auto* rev = std::get_if<records::revision_payload>(&p.value())) {
              origin = rev->origin == o.name;
            }
          }
        }
        return swarm::held_bundle{reg.bundle_path(rv.value()), origin};
      },
      // Pieces are read into recycled frame buffers of the mesh (docs/swarm.md "CPU per byte").
      [&gossip](std::size_t body) { return gossip->take_frame_buffer(body); });
  // An upload's manifest, computed to check it, is kept for seeding (no second hash).
  reg.set_manifest_sink([&bundles](const std::string& id, std::span<const std::byte> encoded) {
    bundles.keep_manifest(id, encoded);
  });
  deploy::journal_store journals(*db.value());
  deploy::mesh_options mo;
  mo.progress_deadline = std::chrono::seconds(o.progress_deadline_s);
  mo.catch_up = o.catch_up;
  mo.tags = o.tags;
  mo.catch_up_delay = std::chrono::seconds(o.catch_up_delay_s);
  mo.empty_data_dir = empty_data_dir && !o.gossip.join.empty();
  mo.settling_marker = settling_marker;
  // This node's intermediate progress records go out at most once per 250 ms per deployment,
  // the newest winning (node/own_record_coalescer.h; bench/RESULTS.md): every node verifies
  // and stores every host's records, so a record saved is saved 32 times at 32 nodes, and an
  // operator's view a quarter of a second behind a fast lifecycle loses nothing (a slow
  // event's end still goes out 250 ms after it).
  own_record_coalescer own_records(
      [&records](const records::payload& p, bool durable, std::uint64_t version) {
        return records.publish_own(p, durable, version);
      },
      [&io](std::chrono::milliseconds delay, std::function<void()> fn) {
        boost::asio::post(io, [&io, delay, fn = std::move(fn)]() mutable {
          auto t = std::make_shared<boost::asio::steady_timer>(io, delay);
          t->async_wait([t, fn = std::move(fn)](const boost::system::error_code& e) {
            if (!e) fn();
          });
        });
      },
      std::chrono::milliseconds(250));
  // Stored records reach the deployer paced (node/paced_feed.h): its status recomputations get
  // about half of the io thread at most, records arriving meanwhile are delivered as one batch,
  // and progress inside a host's window is shown within 300 ms rather than recomputed per record.
  paced_feed feed(0.5, std::chrono::milliseconds(250), std::chrono::milliseconds(300));
  boost::asio::steady_timer feed_timer(io);
  auto paced = [&feed](const std::function<void()>& fn) {
    const auto start = paced_feed::clock::now();
    fn();
    feed.worked(start, paced_feed::clock::now());
  };
  deploy::mesh_deployer mesh_deploys(
      reg, *store.value(), journals, exec, o.name, mo,
      deploy::mesh_env{
          [&own_records](const records::payload& p, bool durable, std::uint64_t version) {
            return own_records.publish(p, durable, version);
          },
          [&server, &rollout_stats](const std::string& id) {
            rollout_stats.mark_changed(id);
            server.notify(id);
          },
          [&](const records::revision_payload& rev,
              std::function<void(std::uint64_t, std::uint64_t)> progress,
              std::function<void(result<fs::path>)> done) {
            // The origin first (the swarm dials it first), then every other live peer: the
            // swarm keeps the ones that hold or fetch the bundle.
            std::vector<std::string> sources;
            if (!rev.origin.empty() && rev.origin != o.name) sources.push_back(rev.origin);
            {
              std::lock_guard lock(peers_mu);
              for (const auto& p : peers) {
                if (p != rev.origin) sources.push_back(p);
              }
            }
            bundles.fetch(
                swarm::bundle_ref{rev.app, rev.id, rev.format, rev.size, rev.manifest, rev.origin},
                std::move(sources), std::move(progress), std::move(done));
          },
          [&io, &paced](std::function<void()> fn) {
            boost::asio::post(io, [&paced, fn = std::move(fn)] { paced(fn); });
          },
          [&records] { return records.matched_a_peer(); }});
  auto deliver = [&](std::vector<records::record> batch) {
    if (batch.empty()) return;
    paced([&] {
      for (const auto& r : batch) mesh_deploys.on_record(r);
    });
  };
  records.set_on_stored([&](const records::record& r) {
    const bool urgent = urgent_for_deployer(r);
    boost::asio::post(io, [&, r, urgent] {
      auto act = feed.offer(r, urgent, paced_feed::clock::now());
      if (act.cancel) feed_timer.cancel();
      if (act.arm) {
        feed_timer.expires_at(*act.arm);
        feed_timer.async_wait([&](const boost::system::error_code& e) {
          if (!e) deliver(feed.take_due());
        });
      }
      deliver(std::move(act.deliver));
    });
  });
  // Remote log reads (`meshdeploy logs ID --host H` through any node; node/deploy/log_service.h):
  // requests and answers are direct messages; this host's own log is read on the pool, never on
  // the io thread.
  deploy::log_service logs(
      o.name,
      deploy::log_service_env{
          [&gossip](const std::string& host, std::vector<std::byte> bytes) {
            return gossip->send_user(host, mesh::user_type_logs, std::move(bytes));
          },
          [&gossip](const std::string& host) -> std::optional<gossip::member_state> {
            for (const auto& m : gossip->members()) {
              if (m.meta.name == host) return m.state;
            }
            return std::nullopt;
          },
          [&deployer, &pool, &io](const std::string& id, const std::string& event,
                                  std::size_t max_bytes,
                                  std::function<void(result<deploy::log_text>)> done) {
            boost::asio::post(
                pool, [&deployer, &io, id, event, max_bytes, done = std::move(done)]() mutable {
                  auto text = deployer.read_log(id, "", event, max_bytes);
                  boost::asio::post(io, [text = std::move(text), done = std::move(done)]() mutable {
                    done(std::move(text));
                  });
                });
          }});
  boost::asio::steady_timer logs_timer(io);
  std::function<void()> arm_logs = [&] {
    const auto next = logs.next_deadline();
    if (next == deploy::log_clock::time_point::max()) return;
    logs_timer.expires_at(next);
    logs_timer.async_wait([&](const boost::system::error_code& e) {
      if (e) return;
      logs.on_tick(deploy::log_clock::now());
      arm_logs();
    });
  };
  router.set_remote_log_reader([&logs, &arm_logs](const std::string& host, const std::string& id,
                                                  const std::string& event,
                                                  deploy::log_service::done_fn done) {
    logs.fetch(host, id, event, deploy::log_clock::now(), std::move(done));
    arm_logs();
  });
  gossip->set_user_handler([&records, &bundles, &logs](std::uint8_t type,
                                                       std::span<const std::byte> payload,
                                                       const std::string& from) {
    if (type == mesh::user_type_records) records.on_message(from, payload);
    if (type == mesh::user_type_swarm) bundles.on_message(from, payload);
    if (type == mesh::user_type_logs) logs.on_message(from, payload, deploy::log_clock::now());
  });
  gossip->set_event_handler([&](const gossip::member_event& ev) {
    refresh_peers();
    save_peers_soon();
    // A log read waiting on a host declared dead or gone fails now rather than at its timeout.
    if (ev.type == gossip::member_event::kind::fail ||
        ev.type == gossip::member_event::kind::leave) {
      logs.on_member_down(ev.who.meta.name);
      bundles.on_peer_down(ev.who.meta.name);
    }
  });
  for (const auto& g : o.grant_files) {
    if (auto l = load_grant(records, g); !l) {
      spdlog::critical("--grant: {}", l.error().message);
      return 2;
    }
  }
  if (auto h = records.publish_own(records::host_payload{o.name, self_id.value().pub}); !h) {
    spdlog::critical(
        "cannot record this node's key: {} (is the name '{}' taken by another node's "
        "key?)",
        h.error().message, o.name);
    return 1;
  }

  mesh_deploys.start(interrupted.value());
  router.add_route_handler(api::make_record_routes(api::record_routes_context{
      reg, *store.value(),
      [&mesh_deploys](const std::string& id) { return mesh_deploys.refresh_now(id); },
      [&records](const records::record& r) { return records.check(r); },
      [&records](const records::record& r) { return records.publish(r); },
      [&] {
        std::lock_guard lock(peers_mu);
        return hosts;
      },
      [&mesh_deploys](const std::string& app, const std::string& group,
                      std::vector<std::string> targets, const std::string& id) {
        return mesh_deploys.plan(app, group, std::move(targets), id);
      }}));
  router.add_route_handler(api::audit_routes(*audit.value()));
  router.add_route_handler(api::ui_routes());  // the read-only web console at /ui/
  aws::frontend aws_front(io, pool, router, reg, deployer, *store.value(),
                          api::node_info{o.name, version(), o.tags, o.install_root.string()},
                          aws::frontend_options{o.aws_credentials, o.aws_api, o.s3_api, o.data_dir,
                                                o.name, o.api_allowed_hosts, &api_stats});
  if (auto a = aws_front.start(); !a) {
    spdlog::critical("{}", a.error().message);
    return 2;
  }
  router.add_route_handler(api::keys_routes(
      *gossip, [&server](const std::string& id) { server.notify(id); }, admin.value().second));

  if (auto g = gossip->start(); !g) {
    spdlog::critical("{}", g.error().message);
    return 2;
  }
  refresh_peers();
  {
    const fs::path tmp = o.data_dir / "gossip.addr.tmp";
    std::ofstream(tmp) << gossip->local_address() << "\n";
    fs::rename(tmp, o.data_dir / "gossip.addr", ec);
  }
  spdlog::info("gossip on {} (cluster '{}'), joining {} seed(s)", gossip->local_address(),
               o.gossip.cluster_id, o.gossip.join.size());
  router.set_metrics_provider([&gossip, &records, &logs, &bundles, &rollout_stats, &api_stats] {
    metrics::exposition own;
    rollout_stats.write(own);
    api_stats.write(own);
    return gossip->prometheus_text() + records.prometheus_text() + logs.prometheus_text() +
           bundles.prometheus_text() + own.take();
  });
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

  // The replicator's clock: wake at its next deadline (at least every second).
  boost::asio::steady_timer sync_timer(io);
  std::function<void()> arm_sync = [&] {
    const auto now = records::clock::now();
    auto next = std::clamp(records.next_deadline(), now + std::chrono::milliseconds(5),
                           now + std::chrono::seconds(1));
    sync_timer.expires_at(next);
    sync_timer.async_wait([&](const boost::system::error_code& e) {
      if (e) return;
      records.on_tick();
      arm_sync();
    });
  };
  arm_sync();

  // The rollout metrics read changed deployments' documents on the pool, never on the io thread.
  auto feed_rollout_stats = [&reg, &rollout_stats, &pool] {
    auto ids = rollout_stats.take_changed();
    if (ids.empty()) return;
    boost::asio::post(pool, [&reg, &rollout_stats, ids = std::move(ids)] {
      for (const auto& id : ids) {
        if (auto d = reg.get_deployment(id); d) rollout_stats.observe(d.value());
      }
    });
  };
  auto resync_rollout_stats = [&reg, &rollout_stats, &pool] {
    boost::asio::post(pool, [&reg, &rollout_stats] {
      if (auto all = reg.list_deployments("", ""); all) rollout_stats.resync(all.value());
    });
  };

  // Deployments' clock: progress deadlines and catch-up (the swarm has its own timer).
  boost::asio::steady_timer deploy_timer(io);
  std::function<void()> arm_deploy = [&] {
    deploy_timer.expires_after(std::chrono::seconds(1));
    deploy_timer.async_wait([&](const boost::system::error_code& e) {
      if (e) return;
      mesh_deploys.on_tick();  // progress deadlines, catch-up
      feed_rollout_stats();
      arm_deploy();
    });
  };
  arm_deploy();

  // Retention: prune old deployment records every hour (and once at start).
  boost::asio::steady_timer prune_timer(io);
  std::function<void()> prune = [&] {
    const records::prune_options po{static_cast<std::int64_t>(o.retention_days) * 24 * 3600 * 1000,
                                    o.retention_per_group};
    if (auto p = store.value()->prune(deploy::now_ms(), po); !p) {
      spdlog::error("retention: {}", p.error().message);
    } else if (p.value().records > 0) {
      spdlog::info("retention: pruned {} deployment(s), {} record(s)", p.value().deployments,
                   p.value().records);
    }
    // Blobs (docs/swarm.md "On disk") live as long as their revision's record: manifests and
    // unfinished downloads of revisions this node no longer knows are removed.
    if (auto revs = store.value()->scan(records::record_type::revision, ""); revs) {
      std::set<std::string> keep;
      for (const auto& r : revs.value()) keep.insert(r.key.substr(r.key.find('/') + 1));
      if (const auto n = bundles.collect_garbage(keep); n > 0) {
        spdlog::info("retention: removed {} blob file(s)", n);
      }
    }
    resync_rollout_stats();  // forgets pruned deployments (and learns the ones at start)
    prune_timer.expires_after(std::chrono::hours(1));
    prune_timer.async_wait([&](const boost::system::error_code& e) {
      if (!e) prune();
    });
  };
  prune();

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
    aws_front.stop();
    deployer.set_on_change({});
    sync_timer.cancel();
    prune_timer.cancel();
    feed_timer.cancel();
    deploy_timer.cancel();
    bundles.stop();
    snapshot_timer.cancel();
    logs_timer.cancel();
    // A graceful leave, then a moment for it to go out before the loop ends.
    gossip->leave();
    auto t = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(300));
    t->async_wait([&io, t](const boost::system::error_code&) { io.stop(); });
  });
  io.run();
  mesh_deploys.shutdown();
  deployer.shutdown();
  pool.join();
  fs::remove(o.data_dir / "api.addr", ec);
  spdlog::info("meshdeploy node '{}' stopped", o.name);
  return 0;
}

}  // namespace meshdeploy::node

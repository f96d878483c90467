// Runs the swarm (node/swarm/swarm.h) inside the node: on the io thread, its messages as the
// mesh's sealed direct messages (gossip user type 3), downloads under <data-dir>/blobs/
// (node/swarm/disk_store.h), complete bundles served from the revision store, a timer at the
// swarm's next deadline, /metrics counters, and blob garbage collection.
//
// Thread safety: every method runs on the io thread, except prometheus_text and keep_manifest
// (any thread).
#pragma once

#include "node/swarm/blob_store.h"
#include "node/swarm/disk_store.h"
#include "node/swarm/swarm.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace meshdeploy::node {

class swarm_service {
 public:
  using send_fn = std::function<void(const std::string& peer, gossip::frame_buffer bytes)>;
  // A buffer with `body` uninitialised bytes and room for the headers (swarm_env::buffer).
  using buffer_fn = std::function<gossip::frame_buffer(std::size_t body)>;
  using locate_fn = std::function<std::optional<swarm::held_bundle>(const std::string& app,
                                                                    const std::string& id)>;
  using progress_fn = std::function<void(std::uint64_t held, std::uint64_t size)>;

  // `buffer` may be empty (a new buffer per piece sent).
  swarm_service(boost::asio::io_context& io, const std::filesystem::path& blobs_dir,
                swarm::swarm_config cfg, send_fn send, locate_fn locate, buffer_fn buffer = {});

  // Fetches `ref` from `candidates`; `progress` (may be empty) as pieces arrive, `done` once.
  void fetch(const swarm::bundle_ref& ref, std::vector<std::string> candidates,
             progress_fn progress, swarm::swarm::done_fn done);
  void on_message(const std::string& from, std::span<const std::byte> payload);
  void on_peer_down(const std::string& peer);
  // Keeps `encoded`, the manifest of bundle `id` computed when it was uploaded here, so that
  // seeding it does not hash the whole bundle again on the io thread (registry::check_manifest
  // calls this). Any thread: it only writes <data-dir>/blobs/<id>.manifest (temp + rename).
  void keep_manifest(const std::string& id, std::span<const std::byte> encoded);
  // Removes blob files of bundles not in `keep` and not being downloaded; returns how many.
  std::size_t collect_garbage(const std::set<std::string>& keep);
  void stop();

  // meshdeploy_swarm_* counters and gauges (Prometheus text).
  [[nodiscard]] std::string prometheus_text() const;

 private:
  void arm();
  void publish_stats();

  boost::asio::io_context& io_;
  swarm::blob_store blobs_;
  swarm::disk_store store_;
  swarm::swarm swarm_;
  boost::asio::steady_timer timer_;
  swarm::time_point armed_ = swarm::time_point::max();
  std::map<std::string, std::vector<progress_fn>> progress_;
  bool stopped_ = false;
  mutable std::mutex stats_mu_;  // guards the copies /metrics reads
  swarm::swarm_stats stats_copy_;
  std::size_t peers_copy_ = 0;
  std::size_t downloads_copy_ = 0;
};

}  // namespace meshdeploy::node

#include "node/swarm_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace meshdeploy::node {

swarm_service::swarm_service(boost::asio::io_context& io, const std::filesystem::path& blobs_dir,
                             swarm::swarm_config cfg, send_fn send, locate_fn locate,
                             buffer_fn buffer)
    : io_(io),
      blobs_(blobs_dir),
      store_(blobs_, std::move(locate)),
      swarm_(
          cfg,
          swarm::swarm_env{std::move(send),
                           [this](const std::string& id, std::uint64_t held, std::uint64_t size) {
                             auto it = progress_.find(id);
                             if (it == progress_.end()) return;
                             for (const auto& fn : it->second) {
                               if (fn) fn(held, size);
                             }
                           },
                           std::move(buffer)},
          store_),
      timer_(io) {}

void swarm_service::fetch(const swarm::bundle_ref& ref, std::vector<std::string> candidates,
                          progress_fn progress, swarm::swarm::done_fn done) {
  progress_[ref.id].push_back(std::move(progress));
  swarm_.fetch(
      ref, std::move(candidates),
      [this, id = ref.id, done = std::move(done)](result<std::filesystem::path> r) {
        progress_.erase(id);
        if (r) {
          spdlog::info("swarm: bundle {} complete", id.substr(0, 12));
        } else {
          spdlog::warn("swarm: {}", r.error().message);
        }
        done(std::move(r));
      },
      swarm::clock::now());
  publish_stats();
  arm();
}

void swarm_service::on_message(const std::string& from, std::span<const std::byte> payload) {
  if (stopped_) return;
  swarm_.on_message(from, payload, swarm::clock::now());
  publish_stats();
  arm();
}

void swarm_service::on_peer_down(const std::string& peer) {
  if (stopped_) return;
  swarm_.on_peer_down(peer, swarm::clock::now());
  arm();
}

void swarm_service::keep_manifest(const std::string& id, std::span<const std::byte> encoded) {
  // blob_store holds no state but its directory: safe from any thread.
  if (auto s = blobs_.save_manifest(id, encoded); !s) {
    spdlog::warn("swarm: cannot keep the manifest of bundle {}: {}", id.substr(0, 12),
                 s.error().message);
  }
}

std::size_t swarm_service::collect_garbage(const std::set<std::string>& keep) {
  std::set<std::string> all = keep;
  for (auto& id : store_.open_ids()) all.insert(std::move(id));
  return blobs_.collect(all);
}

void swarm_service::stop() {
  stopped_ = true;
  timer_.cancel();
}

void swarm_service::arm() {
  if (stopped_) return;
  const auto next = swarm_.next_deadline();
  if (next == swarm::time_point::max() || next >= armed_) return;
  armed_ = next;
  timer_.expires_at(next);
  timer_.async_wait([this](const boost::system::error_code& e) {
    if (e) return;  // cancelled: re-armed earlier, or stopping
    armed_ = swarm::time_point::max();
    swarm_.on_tick(swarm::clock::now());
    publish_stats();
    arm();
  });
}

void swarm_service::publish_stats() {
  std::lock_guard lock(stats_mu_);
  stats_copy_ = swarm_.stats();
  peers_copy_ = swarm_.connected_peers();
  downloads_copy_ = progress_.size();
}

std::string swarm_service::prometheus_text() const {
  swarm::swarm_stats st;
  std::size_t peers = 0, downloads = 0;
  {
    std::lock_guard lock(stats_mu_);
    st = stats_copy_;
    peers = peers_copy_;
    downloads = downloads_copy_;
  }
  std::string out;
  auto counter = [&out](const char* name, const char* help, std::uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, v);
  };
  auto gauge = [&out](const char* name, const char* help, std::uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, v);
  };
  counter("meshdeploy_swarm_upload_bytes_total", "Bundle piece bytes sent to other nodes.",
          st.upload_bytes);
  counter("meshdeploy_swarm_download_bytes_total",
          "Bundle piece bytes received and verified against the manifest.", st.download_bytes);
  counter("meshdeploy_swarm_pieces_verified_total", "Pieces received whose hash matched.",
          st.pieces_verified);
  counter("meshdeploy_swarm_pieces_rejected_total",
          "Pieces received whose hash did not match the manifest (the sender is dropped).",
          st.pieces_rejected);
  counter("meshdeploy_swarm_duplicate_pieces_total",
          "Verified pieces received that were already held (endgame copies).", st.duplicate_pieces);
  counter("meshdeploy_swarm_peers_dropped_total",
          "Peers dropped from a bundle for a bad piece or manifest.", st.peers_dropped);
  counter("meshdeploy_swarm_requests_declined_total",
          "Piece requests answered busy (not held, queue full, or seeded once already).",
          st.requests_declined);
  counter("meshdeploy_swarm_messages_rejected_total",
          "Swarm messages that were undecodable or out of place.", st.rejected_messages);
  counter("meshdeploy_swarm_downloads_completed_total", "Bundle downloads completed.",
          st.downloads_completed);
  counter("meshdeploy_swarm_downloads_failed_total", "Bundle downloads that failed.",
          st.downloads_failed);
  gauge("meshdeploy_swarm_peers_connected",
        "Distinct peers in some bundle's peer table that answered.", peers);
  gauge("meshdeploy_swarm_downloads_active", "Bundle downloads running now.", downloads);
  return out;
}

}  // namespace meshdeploy::node

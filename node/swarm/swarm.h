// The swarm (DESIGN §6, docs/swarm.md): distributes revision bundles between nodes piece by
// piece, every node serving what it holds while it downloads, so that a rollout to many hosts
// costs about one bundle's worth of time at one host's upload speed rather than N of them.
//
// A download first fetches the bundle's manifest (checked against the name signed into the
// revision record), opens (or resumes) its pieces in the piece_store, then keeps a table of up
// to max_peers peers that hold or fetch the bundle (hello / have messages tell who holds what)
// and asks them for pieces rarest first (piece_picker), about requests_in_flight at a time
// spread over the peers; an uploader serves the rarest piece asked of it first. Every piece is
// hashed against the manifest before it is stored or served; a peer that sends a bad one is dropped
// from the bundle's table for good and counted. Requests go out within --max-download-rate, pieces
// within --max-upload-rate (rate_limiter), and a node serves at most max_peers peers per bundle.
// The node where a revision was pushed (its origin) seeds each piece once: it declines (busy) a
// piece that a peer in its table already announced, or that it sent less than reseed_after ago, so
// the fleet spreads the copies and the origin uploads about one bundle.
//
// Uploads go out through at most upload_slots at a time: a piece holds its slot until the
// receiver's `have` (which every receiver sends to the piece's sender) acknowledges it, so a
// node's uplink carries a few copies at full speed rather than many at a crawl, and each copy
// can be passed on sooner (the binomial pipeline the physical limit assumes).
//
// Sans-IO: messages go out through an injected send function, time comes in as arguments, and
// storage is the injected piece_store, so the simulator runs the same code
// (tests/sim/swarm_sim.h). Wire messages: node/swarm/wire.h.
//
// Thread safety: not thread-safe; call everything from one thread (the node's io thread).
#pragma once

#include "gossip/frame_buffer.h"
#include "node/swarm/manifest.h"
#include "node/swarm/piece_picker.h"
#include "node/swarm/piece_store.h"
#include "node/swarm/rate_limiter.h"
#include "node/swarm/wire.h"
#include "storage/result.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace meshdeploy::swarm {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;

struct swarm_config {
  std::size_t max_peers = 16;  // peers in one bundle's table (both directions)
  std::size_t dial_peers = 8;  // how many of them this node contacts itself
  // Pieces asked for at a time: about requests_in_flight over all peers, at least one and at
  // most requests_per_peer per peer (one each in a large swarm, so no request waits in a long
  // queue at a busy peer; several from a single peer, so one fast link stays full).
  std::size_t requests_in_flight = 8;
  std::size_t requests_per_peer = 8;
  // Pieces this node sends at once (a piece counts until the receiver's have acknowledges it,
  // or upload_ack_timeout): few at a time, so each copy lands fast and can be passed on.
  std::size_t upload_slots = 4;
  std::chrono::milliseconds upload_ack_timeout{15000};
  std::uint64_t max_upload_rate = 0;                 // bytes/s, 0 = unlimited
  std::uint64_t max_download_rate = 0;               // bytes/s, 0 = unlimited
  std::chrono::milliseconds hello_timeout{5000};     // unanswered hello / manifest request
  std::chrono::milliseconds request_timeout{30000};  // unanswered piece request: ask elsewhere
  std::chrono::milliseconds retry_after{3000};       // re-contact a peer that had nothing
  std::chrono::milliseconds reseed_after{5000};      // the origin sends a piece again
  std::chrono::seconds stall_timeout{120};           // no piece at all: the download fails
  std::chrono::minutes idle_forget{10};              // a seeded bundle nobody asked for
  std::uint64_t seed = 1;                            // randomness (tie breaks, dial order)
};

struct swarm_env {
  // Sends one message to a peer (reliable, in order, sealed). The message is the buffer's
  // contents; its room in front and behind lets the layers below add their headers and seal in
  // place (gossip/frame_buffer.h).
  std::function<void(const std::string& peer, gossip::frame_buffer bytes)> send;
  // A download gained a piece (coalescing is the caller's business).
  std::function<void(const std::string& id, std::uint64_t held_bytes, std::uint64_t size)> progress;
  // Optional: a buffer whose contents are `body` uninitialised bytes, with room around them
  // (frame_headroom / frame_tailroom), to read a piece into before sending it; the node hands
  // out recycled ones (gossip_driver::take_frame_buffer). Empty: a new buffer per piece.
  std::function<gossip::frame_buffer(std::size_t body)> buffer;
};

struct swarm_stats {
  std::uint64_t upload_bytes = 0;    // piece bytes sent
  std::uint64_t download_bytes = 0;  // piece bytes received and verified
  std::uint64_t pieces_verified = 0;
  std::uint64_t pieces_rejected = 0;    // hash did not match the manifest
  std::uint64_t duplicate_pieces = 0;   // verified but already held (endgame)
  std::uint64_t peers_dropped = 0;      // for a bad piece or manifest
  std::uint64_t rejected_messages = 0;  // undecodable or out of place
  std::uint64_t requests_declined = 0;  // busy answers this node sent
  std::uint64_t downloads_completed = 0;
  std::uint64_t downloads_failed = 0;
};

class swarm {
 public:
  using done_fn = std::function<void(result<std::filesystem::path>)>;

  swarm(swarm_config cfg, swarm_env env, piece_store& store);

  // Fetches `ref` from `candidates` (peers that may hold or fetch it; the origin is contacted
  // first). `done` is called once, from a later call (on_message / on_tick / fetch), with the
  // verified file or an error naming the bundle and why. A second fetch of a bundle already
  // being fetched adds its `done` (and candidates). If this node already holds the complete
  // bundle, use the store instead: fetch() assumes it does not.
  void fetch(const bundle_ref& ref, std::vector<std::string> candidates, done_fn done,
             time_point now);

  void on_message(const std::string& from, std::span<const std::byte> bytes, time_point now);
  // A member died or left: its requests go elsewhere, it leaves every table.
  void on_peer_down(const std::string& peer, time_point now);
  void on_tick(time_point now);
  // When on_tick next has work; time_point::max() when idle.
  [[nodiscard]] time_point next_deadline() const;

  [[nodiscard]] const swarm_stats& stats() const { return stats_; }
  // Distinct peers in some bundle's table that answered a hello.
  [[nodiscard]] std::size_t connected_peers() const;
  // Bytes held of a running download, if `id` is one.
  [[nodiscard]] std::optional<std::uint64_t> held_bytes(const std::string& id) const;

 private:
  struct peer_state {
    bool known = false;                 // answered / sent a hello
    std::vector<bool> has;              // its pieces (once the manifest is known)
    std::vector<std::byte> early_bits;  // bits received before the manifest
    std::size_t outstanding = 0;        // this node's requests to it
    time_point hello_sent{};
    time_point busy_until{};
    std::map<std::size_t, time_point> declined;  // piece -> do not ask before
  };
  struct request {
    std::string peer;
    time_point sent;
  };
  struct bundle {
    bundle_ref ref;
    bool downloading = false;  // false: seeding a complete bundle
    bool origin = false;
    std::optional<manifest> m;
    std::vector<std::byte> manifest_bytes;
    std::unique_ptr<piece_picker> picker;  // downloads, once the manifest is known
    std::map<std::string, peer_state> peers;
    std::vector<std::string> candidates;        // to dial, in order
    std::map<std::string, time_point> refused;  // said none / full: not before
    std::set<std::string> banned;               // sent a bad piece or manifest
    std::multimap<std::size_t, request> in_flight;
    std::string manifest_from;  // peer asked for the manifest
    time_point manifest_asked{};
    std::size_t manifest_turn = 0;  // next candidate to ask for the manifest
    std::size_t dial_turn = 0;      // next candidate to dial
    std::uint64_t held_bytes = 0;
    std::vector<time_point> uploaded_at;  // origin: when each piece last went out
    std::vector<done_fn> done;
    time_point last_progress{};
    time_point last_activity{};
  };
  struct upload {
    std::string peer, id;
    std::size_t index;
    time_point sent{};  // once sent: waiting for the receiver's have
  };

  bundle* find(const std::string& id);
  bundle* seeding_entry(const std::string& app, const std::string& id, time_point now);
  void handle(const std::string& from, hello_msg m, time_point now);
  void handle(const std::string& from, const have_msg& m, time_point now);
  void handle(const std::string& from, const request_msg& m, time_point now);
  void handle(const std::string& from, const piece_view& m, time_point now);
  void handle(const std::string& from, const none_msg& m, time_point now);
  void handle(const std::string& from, const busy_msg& m, time_point now);
  void handle(const std::string& from, const manifest_request_msg& m, time_point now);
  void handle(const std::string& from, const manifest_msg& m, time_point now);

  void ask_manifest(bundle& b, time_point now);
  void set_manifest(bundle& b, manifest m, std::vector<std::byte> bytes, time_point now);
  void set_peer_bits(bundle& b, peer_state& p, std::span<const std::byte> bits);
  void dial(bundle& b, time_point now);
  void schedule(bundle& b, time_point now);
  void clear_requests(bundle& b, const std::string& peer, std::optional<std::size_t> index);
  void drop_peer(bundle& b, const std::string& peer, bool ban);
  void pump_uploads(time_point now);
  // How many peers in its table hold piece `index` of bundle `id`, as this node knows.
  [[nodiscard]] std::size_t copies(const std::string& id, std::size_t index);
  [[nodiscard]] std::vector<bool> held_of(const bundle& b) const;
  void finish(const std::string& id, result<std::filesystem::path> r);
  void send(const std::string& peer, const swarm_message& m);

  swarm_config cfg_;
  swarm_env env_;
  piece_store& store_;
  rate_limiter up_, down_;
  std::mt19937_64 rng_;
  std::map<std::string, bundle> bundles_;  // by bundle id
  std::deque<upload> uploads_;             // queued
  std::vector<upload> sending_;            // sent, not yet acknowledged
  swarm_stats stats_;
  time_point now_{};  // the latest time passed in
};

}  // namespace meshdeploy::swarm

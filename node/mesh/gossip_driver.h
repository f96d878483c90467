// Runs the sans-IO gossip membership (gossip/membership.h) for real: UDP
// packets and TCP streams on the node's --bind address, every byte sealed
// with the cluster keyring (gossip/packet_crypto.h), a timer that wakes the
// core at its next deadline. See docs/gossip.md "Running it".
//
// Streams are long-lived: one outgoing connection per peer carries every stream message to it
// (sealed frames of one stream_sealer, in order), up to max_outbound_streams connections, each
// closed after outbound_idle without traffic; incoming sessions are bounded the same way
// (node/mesh/connection_table.h has the eviction policy).
//
// Secure envelope (inside the AEAD, so it is authenticated):
//   [u8 name length][name][u16 advertised port][u64 boot epoch][u64 sequence][core bytes]
// The receiver drops replays with a per-sender replay window keyed by
// (name, epoch, sequence), and reports stream senders by their advertised
// port (their TCP source port is ephemeral).
//
// Thread safety: everything runs on the io_context's one thread; call every
// method from it (members() included).
#pragma once

#include "gossip/config.h"
#include "gossip/frame_buffer.h"
#include "gossip/keyring.h"
#include "gossip/metrics.h"
#include "gossip/types.h"
#include "storage/result.h"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::mesh {

// User message types (the `type` of send_user, broadcast and the user handler) reserved for the
// layers above; each layer owns its number and decodes its own payloads. Append, never reuse.
inline constexpr std::uint8_t user_type_records = 1;      // records replication
inline constexpr std::uint8_t user_type_deployments = 2;  // deployments
// Swarm (bundle distribution, node/swarm/wire.h). Direct messages only, like logs.
inline constexpr std::uint8_t user_type_swarm = 3;
// Keyring operations: handled inside the driver, never passed to the user handler.
inline constexpr std::uint8_t user_type_keys = 4;
// Remote log reads (node/deploy/log_service.h). Direct messages only: one that arrives in a
// packet (a broadcast, whose origin name is only claimed) is dropped before the user handler.
inline constexpr std::uint8_t user_type_logs = 5;

// Cluster-wide key operations (run_key_operation; docs/security.md "Key rotation").
enum class key_action : std::uint8_t { list, install, use, remove };
// "list", "install", "use", "remove".
std::string_view to_string(key_action a);

// A key as shown to operators: never the secret itself.
struct key_info {
  std::string id;           // key id, 2 hex digits
  std::string fingerprint;  // mesh::key_fingerprint, 16 hex digits
  friend bool operator==(const key_info&, const key_info&) = default;
};

// One member's answer to a key operation.
struct key_member_reply {
  std::string name;
  bool ok = false;
  std::string error;           // why not ok
  std::vector<key_info> keys;  // its keys after the operation, primary first
};

struct key_report {
  key_action action = key_action::list;
  std::vector<key_member_reply> replies;  // this node first, then by name
  std::vector<std::string> missing;       // live members asked that did not answer in time
};

struct gossip_options {
  std::string bind = "127.0.0.1:7946";  // UDP and TCP, HOST:PORT (numeric)
  std::string advertise;                // address others reach us at; "" = bind
  std::vector<std::string> join;        // seeds, HOST:PORT
  std::string cluster_id = "meshdeploy";
  gossip::config cfg = gossip::config::lan();
  // Key rotation: where every key change is persisted ("" = nowhere; node.cc uses
  // <data-dir>/keyring.json, node/mesh/keyring_store.h), the stored generation and the
  // fingerprints of keys removed cluster-wide.
  std::filesystem::path keyring_file;
  std::uint64_t keyring_generation = 0;
  std::vector<std::string> removed_keys;
  // How long a key operation waits for members' answers (per phase).
  std::chrono::milliseconds key_op_timeout{3000};
  // Stream connections (docs/gossip.md "Running it"): at most this many open at once in each
  // direction (the least recently used idle one is closed for a new one), each closed after
  // this long without a frame. Keep inbound_idle above the peers' outbound_idle. The records
  // layer's anti-entropy sends each peer a digest every N-1 seconds or so, so at N=50 a 20 s
  // idle closed most streams before their next use (a new connection for 2 digests in 3).
  std::size_t max_outbound_streams = 64;
  std::size_t max_inbound_streams = 256;
  std::chrono::milliseconds outbound_idle{120'000};
  std::chrono::milliseconds inbound_idle{180'000};
};

// Packets and streams the driver refused before they reached the core.
struct driver_counters {
  std::uint64_t dropped_auth = 0;      // unknown key, failed authentication, malformed seal
  std::uint64_t dropped_replay = 0;    // replayed or too old
  std::uint64_t dropped_envelope = 0;  // authenticated but the envelope is malformed
  std::uint64_t stream_errors = 0;     // connect/read/write failures and timeouts
  std::uint64_t streams_opened = 0;    // outgoing connections opened
  std::uint64_t frames_reused = 0;     // stream messages sent on an already open connection
  std::uint64_t streams_evicted = 0;   // connections closed to stay within the limits
  std::uint64_t frames_dropped = 0;    // queued on a connection that closed before writing them
  // UDP payloads and TCP frames as written: envelope, crypto and the 4-byte frame length
  // included; the IP/UDP/TCP headers (28 B per datagram, 52 B per TCP segment with ACKs) not.
  std::uint64_t sealed_bytes_out = 0;
  std::uint64_t sealed_bytes_in = 0;
};

class gossip_driver {
 public:
  // `io` must outlive the driver. `self.addr` is filled from the options.
  gossip_driver(boost::asio::io_context& io, gossip::keyring ring, gossip::node_meta self,
                gossip_options options);
  ~gossip_driver();
  gossip_driver(const gossip_driver&) = delete;
  gossip_driver& operator=(const gossip_driver&) = delete;

  // Binds UDP and TCP and joins the seeds (retrying with backoff until some
  // member answers). Errors name the address.
  result<void> start();
  // Broadcasts a graceful leave. The caller keeps the io_context running a
  // little longer (node.cc: 300 ms) so the packets go out before it stops.
  void leave();

  // Receives every user message: direct ones (send_user) and broadcasts. `from_name` is the
  // sender's node name: for a direct message the name in the authenticated secure envelope, for
  // a broadcast its origin. Called on the io thread; the payload is only valid during the call.
  // Exceptions thrown by the handler are caught and logged. May be set before or after start().
  using user_handler = std::function<void(std::uint8_t type, std::span<const std::byte> payload,
                                          const std::string& from_name)>;
  void set_user_handler(user_handler h);

  // Sends `payload` to the member named `member_name` over the encrypted TCP stream to it
  // (opened on first use and reused; fire and forget: success means queued, not delivered).
  // Errors (gossip/errc.h): unknown_member if start() has not run, or the member is unknown,
  // dead or left; too_large if payload.size() > gossip::max_direct_payload_bytes (~8 MiB).
  result<void> send_user(const std::string& member_name, std::uint8_t type,
                         std::vector<std::byte> payload);
  // The same for a payload in a frame_buffer (from take_frame_buffer): the direct message,
  // envelope and seal are built around it in place, so its bytes are not copied on the way to
  // the socket (swarm pieces: docs/swarm.md).
  result<void> send_user(const std::string& member_name, std::uint8_t type,
                         gossip::frame_buffer payload);
  // A buffer with an uninitialised body of `body` bytes and room for every header of a stream
  // frame, reused from frames already written when one is free. io thread only.
  gossip::frame_buffer take_frame_buffer(std::size_t body);

  // Floods a small payload to every other member (at most once each, best effort).
  // Errors: unknown_member before start(); too_large over gossip::max_user_payload_bytes.
  result<void> broadcast(std::uint8_t type, std::vector<std::byte> payload);

  // Membership changes (join, leave, fail, update), on the io thread. May be set before or after
  // start(). Exceptions thrown by the handler are caught and logged.
  void set_event_handler(std::function<void(const gossip::member_event&)> h);

  // Names of the members currently alive or suspect, self excluded, in name order.
  std::vector<std::string> live_peers() const;

  // Runs a key operation on this node and every live member, and calls `done` once, on the io
  // thread, when all have answered or key_op_timeout passed (use runs two phases: a list that
  // checks every answering member holds the key, then the use). Each member applies it to its
  // live keyring and persists it; install/use/remove raise the keyring generation. A member
  // that missed it catches up later by keyring sync (docs/security.md). `done` may be called
  // before this returns (errors, or no other member).
  // Errors (gossip/errc.h), nothing changed anywhere: invalid_key (key text); key_not_found (use
  // of a key not installed here or on some answering member, named); primary_key (remove of
  // this node's primary); unknown_member (gossip not running).
  void run_key_operation(key_action a, const std::string& key_base64,
                         std::function<void(result<key_report>)> done);
  // This node's keys, primary first.
  std::vector<key_info> local_keys() const;

  std::vector<gossip::member> members() const;
  const gossip::metrics& core_stats() const;
  const driver_counters& counters() const;
  std::string local_address() const;  // "HOST:PORT" actually bound
  // Prometheus text for /metrics: members by state, traffic, drops by reason,
  // suspicions, broadcast queue depth. All names start with meshdeploy_gossip_.
  std::string prometheus_text() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace meshdeploy::mesh

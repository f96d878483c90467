// Runs the sans-IO gossip membership (gossip/membership.h) for real: UDP
// packets and TCP streams on the node's --bind address, every byte sealed
// with the cluster keyring (gossip/packet_crypto.h), a timer that wakes the
// core at its next deadline. See docs/gossip.md "Running it".
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
#include "gossip/keyring.h"
#include "gossip/metrics.h"
#include "gossip/types.h"
#include "storage/result.h"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace meshdeploy::mesh {

struct gossip_options {
  std::string bind = "127.0.0.1:7946";  // UDP and TCP, HOST:PORT (numeric)
  std::string advertise;                // address others reach us at; "" = bind
  std::vector<std::string> join;        // seeds, HOST:PORT
  std::string cluster_id = "meshdeploy";
  gossip::config cfg = gossip::config::lan();
};

// Packets and streams the driver refused before they reached the core.
struct driver_counters {
  std::uint64_t dropped_auth = 0;      // unknown key, failed authentication, malformed seal
  std::uint64_t dropped_replay = 0;    // replayed or too old
  std::uint64_t dropped_envelope = 0;  // authenticated but the envelope is malformed
  std::uint64_t stream_errors = 0;     // connect/read/write failures and timeouts
  std::uint64_t sealed_bytes_out = 0;  // on the wire, headers and crypto included
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

// The network seam of the sans-IO gossip core. membership sends every byte
// through a `transport&` it is given; the Asio driver implements it with UDP
// and TCP sockets, tests with tests/support/in_memory_network.h. Receiving is
// the other direction: the driver calls membership::on_packet/on_stream.
#pragma once

#include "gossip/frame_buffer.h"

#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace meshdeploy::gossip {

// Where a node listens: one host (IP literal or name) and one port, used for
// both the packet (UDP) and the stream (TCP) channel. A value type.
struct address {
  std::string host;
  std::uint16_t port = 0;

  friend bool operator==(const address&, const address&) = default;
  friend auto operator<=>(const address&, const address&) = default;

  // "host:port", or "[host]:port" when host contains a ':' (IPv6).
  [[nodiscard]] std::string to_string() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

// Sends bytes to another node. Both calls are fire-and-forget: delivery may
// fail silently (the protocol copes with loss), they never block and never
// call back into membership synchronously. Implementations are used from the
// one thread that owns the membership (node executor only).
class transport {
 public:
  virtual ~transport() = default;

  // An unreliable datagram (UDP). REQUIRES: bytes.size() <= max_packet_bytes
  // (gossip/messages.h); membership never sends more.
  virtual void send_packet(const address& to, std::vector<std::byte> bytes) = 0;

  // One complete, reliably framed message (TCP): push/pull state exchange,
  // the TCP fallback probe and its ack. REQUIRES: bytes.size() <=
  // max_stream_bytes. The driver frames and delivers it as a whole.
  virtual void send_stream(const address& to, std::vector<std::byte> bytes) = 0;

  // The same message in a frame_buffer (a direct message built around its payload in place):
  // a transport that seals in place overrides this; by default the bytes are copied out.
  virtual void send_stream(const address& to, frame_buffer bytes) {
    send_stream(to, bytes.to_vector());
  }
};

}  // namespace meshdeploy::gossip

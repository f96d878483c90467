// The secure envelope inside every sealed gossip packet and stream frame (node/mesh/
// gossip_driver.cc; docs/security.md): who sent it and the replay counters, then the gossip
// body. Layout, big-endian:
//
//   [name length u8 (>= 1)][name][port u16][epoch u64][seq u64][body ...]
//
// parse_envelope reads bytes that authenticated but come from any key holder: it checks sizes
// only; the caller applies the replay guard (epoch, seq) and decodes the body.
#pragma once

#include "gossip/frame_buffer.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::mesh {

struct envelope {
  std::string name;
  std::uint16_t port = 0;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::span<const std::byte> body;  // a view into the parsed bytes
};

// REQUIRES: 1 <= name.size() <= 255.
std::vector<std::byte> encode_envelope(std::string_view name, std::uint16_t port,
                                       std::uint64_t epoch, std::uint64_t seq,
                                       std::span<const std::byte> body);

// The same bytes written in front of `body`'s contents (no copy of the body).
// REQUIRES: 1 <= name.size() <= 255.
void prepend_envelope(gossip::frame_buffer& body, std::string_view name, std::uint16_t port,
                      std::uint64_t epoch, std::uint64_t seq);

// nullopt when `p` is shorter than its header or names no sender.
std::optional<envelope> parse_envelope(std::span<const std::byte> p);

}  // namespace meshdeploy::mesh

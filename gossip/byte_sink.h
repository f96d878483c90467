// A msgpack output buffer that writes straight into a std::vector<std::byte>, so an encoder
// returns the bytes it packed without copying them out of an msgpack::sbuffer (a 256 KiB
// swarm piece was copied once per encode that way: bench/RESULTS.md "Swarm: CPU per byte").
//
//   std::vector<std::byte> out;
//   out.reserve(expected);              // optional: avoids regrowing
//   gossip::byte_sink sink{out};
//   msgpack::packer<gossip::byte_sink> p(sink);
//
// Threading: none.
#pragma once

#include <cstddef>
#include <vector>

namespace meshdeploy::gossip {

struct byte_sink {
  std::vector<std::byte>& out;
  // The interface msgpack::packer needs.
  void write(const char* data, std::size_t n) {
    const auto* b = reinterpret_cast<const std::byte*>(data);
    out.insert(out.end(), b, b + n);  // no zero-fill before the copy, unlike resize
  }
};

}  // namespace meshdeploy::gossip

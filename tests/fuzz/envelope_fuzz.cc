// libFuzzer target for the gossip packet envelope (node/mesh/envelope.h), the first decoder an
// opened packet or stream frame meets: parse_envelope must never crash, hang or leak; whatever
// it accepts must re-encode to the same bytes; and its body then goes through the gossip
// decoder on both channels, as the node does (gossip/codec.h; must not crash either).
//
// Built by the clang fuzz build (MESHDEPLOY_FUZZ); by hand:
//   clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -I. -include utility
//     tests/fuzz/envelope_fuzz.cc node/mesh/envelope.cc gossip/codec.cc gossip/types.cc
//     gossip/errc.cc -lfmt
#include "gossip/codec.h"
#include "node/mesh/envelope.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto e = meshdeploy::mesh::parse_envelope(bytes);
  if (!e) return 0;
  require(!e->name.empty() && e->name.size() <= 255);
  require(e->body.size() + e->name.size() + 19 == size);
  const auto again = meshdeploy::mesh::encode_envelope(e->name, e->port, e->epoch, e->seq, e->body);
  require(std::equal(again.begin(), again.end(), bytes.begin(), bytes.end()));
  for (auto ch : {meshdeploy::gossip::channel::packet, meshdeploy::gossip::channel::stream}) {
    auto got = meshdeploy::gossip::decode(e->body, ch);
    require(got.has_value() || !got.error().message.empty());
  }
  return 0;
}

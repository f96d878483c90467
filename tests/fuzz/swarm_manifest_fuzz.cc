// libFuzzer target for the swarm's piece manifest decoder (node/swarm/manifest.h): manifests
// arrive from any peer, so decode_manifest() must never crash, hang or leak on any bytes;
// whatever it accepts must be consistent (piece size in range, one hash per piece, at most
// max_pieces) and re-encode to bytes that decode to the same manifest (checked here; a
// violation aborts).
//
// Built by the clang fuzz build (MESHDEPLOY_FUZZ); by hand:
//   clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -I. -include utility
//     tests/fuzz/swarm_manifest_fuzz.cc node/swarm/manifest.cc node/agent/errc.cc -lfmt -lsodium
#include "node/swarm/manifest.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

namespace {

using namespace meshdeploy::swarm;

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto got = decode_manifest(bytes);
  if (!got) {
    require(!got.error().message.empty());
    return 0;
  }
  const manifest& m = got.value();
  require(m.piece_size >= min_piece_size && m.piece_size <= max_piece_size);
  require(m.piece_count() <= max_pieces);
  require(m.piece_count() == m.size / m.piece_size + (m.size % m.piece_size != 0 ? 1 : 0));
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < m.piece_count(); ++i) {
    const std::uint32_t len = m.piece_length(i);
    require(len >= 1 && len <= m.piece_size);
    require(m.piece_offset(i) == total);
    total += len;
  }
  require(total == m.size);
  const auto again_bytes = encode_manifest(m);
  auto again = decode_manifest(again_bytes);
  require(again.has_value());
  require(again.value() == m);
  require(manifest_id(again_bytes).size() == 64);
  return 0;
}

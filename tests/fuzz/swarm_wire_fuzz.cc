// libFuzzer target for the swarm's wire decoder (node/swarm/wire.h): decode_swarm_message()
// must never crash, hang or leak on any bytes; whatever it accepts must keep every field within
// its limit and re-encode to bytes that decode to the same message (a violation aborts).
//
// Built by the clang fuzz build (MESHDEPLOY_FUZZ); scripts/fuzz 60 swarm_wire.
#include "node/swarm/wire.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>

namespace {

using namespace meshdeploy::swarm;

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto got = decode_swarm_message(bytes);
  if (!got) return 0;
  std::visit(
      [](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (requires { m.id; }) require(m.id.size() == bundle_id_chars);
        if constexpr (requires { m.app; }) require(m.app.size() <= max_app_bytes);
        if constexpr (std::is_same_v<T, hello_msg>) require(m.bits.size() <= max_pieces / 8);
        if constexpr (std::is_same_v<T, piece_msg>) {
          require(!m.data.empty() && m.data.size() <= max_piece_size);
        }
        if constexpr (std::is_same_v<T, manifest_msg>) {
          require(!m.bytes.empty() && m.bytes.size() <= max_manifest_bytes);
        }
      },
      got.value());
  auto again = decode_swarm_message(encode_swarm_message(got.value()));
  require(again.has_value() && again.value() == got.value());
  return 0;
}

// libFuzzer target for the swarm's wire decoder (node/swarm/wire.h): decode_swarm_message()
// must never crash, hang or leak on any bytes; whatever it accepts must keep every field within
// its limit and re-encode to bytes that decode to the same message, and decode_swarm_view() (the
// receive path: a piece's data as a view into the input) must accept exactly the same (a
// violation aborts).
//
// Built by the clang fuzz build (MESHDEPLOY_FUZZ); scripts/fuzz 60 swarm_wire.
#include "node/swarm/wire.h"

#include <algorithm>
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
  if (!got) {
    require(!decode_swarm_view(bytes).has_value());
    return 0;
  }
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
  // The receive path's view decoder accepts exactly the same, a piece as a view into the input.
  auto view = decode_swarm_view(bytes);
  require(view.has_value() && view.value().index() == got.value().index());
  if (const auto* p = std::get_if<piece_view>(&view.value())) {
    const auto& m = std::get<piece_msg>(got.value());
    require(p->id == m.id && p->index == m.index && p->data.size() == m.data.size());
    require(p->data.data() >= bytes.data() &&
            p->data.data() + p->data.size() <= bytes.data() + bytes.size());
    require(std::equal(p->data.begin(), p->data.end(), m.data.begin()));
  }
  return 0;
}

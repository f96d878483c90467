// libFuzzer target for the gossip wire decoder: decode() must never crash,
// hang or leak on any bytes, on either channel, and whatever it accepts must
// re-encode to bytes that decode to the same messages (checked here; a
// violation aborts). decode_direct() (the receive path of direct messages,
// without copying the payload) must agree with decode() on the stream channel.
//
// Built by the clang fuzz build (MESHDEPLOY_FUZZ); by hand:
//   clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -I. -include utility
//     tests/fuzz/gossip_codec_fuzz.cc gossip/codec.cc gossip/types.cc gossip/errc.cc -lfmt
#include "gossip/codec.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

namespace {

using namespace meshdeploy::gossip;

void require(bool condition) {
  if (!condition) std::abort();
}

void check(std::span<const std::byte> bytes, channel ch) {
  auto got = decode(bytes, ch);
  if (!got) {
    require(!got.error().message.empty());
    return;
  }
  for (const auto& m : got.value()) {
    require(ch == channel::stream || type_of(m) != msg_type::push_pull);
    auto again = decode(encode(m), ch);
    require(again.has_value());
    require(again.value().size() == 1 && again.value()[0] == m);
  }
}

void check_direct(std::span<const std::byte> bytes) {
  auto view = decode_direct(bytes);
  auto full = decode(bytes, channel::stream);
  if (!view) {
    require(!full.has_value() && full.error().code == view.error().code);
    return;
  }
  if (!view.value()) return;  // another type: decode() alone decides
  require(full.has_value() && full.value().size() == 1);
  const auto* d = std::get_if<direct_msg>(&full.value()[0]);
  require(d != nullptr);
  const direct_view& v = *view.value();
  require(v.from == d->from && v.from_addr == d->from_addr && v.user_type == d->user_type);
  require(v.payload.size() == d->payload.size());
  // The view lies inside the input.
  require(v.payload.empty() ||
          (v.payload.data() >= bytes.data() &&
           v.payload.data() + v.payload.size() <= bytes.data() + bytes.size()));
  for (std::size_t i = 0; i < v.payload.size(); ++i) require(v.payload[i] == d->payload[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  check(bytes, channel::packet);
  check(bytes, channel::stream);
  check_direct(bytes);
  return 0;
}

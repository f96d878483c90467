// libFuzzer target for the remote log read wire decoder (node/deploy/log_messages.h):
// decode_log_message() must never crash, hang or leak on any bytes; whatever it accepts must
// keep every field within its limit and re-encode to bytes that decode to the same message
// (checked here; a violation aborts).
//
// Built by the clang fuzz build (MESHDEPLOY_FUZZ); by hand:
//   clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -I. -include utility
//     tests/fuzz/log_messages_fuzz.cc node/deploy/log_messages.cc node/deploy/errc.cc -lfmt
#include "node/deploy/log_messages.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>

namespace {

using namespace meshdeploy::deploy;

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto got = decode_log_message(bytes);
  if (!got) {
    require(!got.error().message.empty());
    return 0;
  }
  if (const auto* req = std::get_if<log_request>(&got.value())) {
    require(!req->deployment_id.empty() && req->deployment_id.size() <= max_log_id_bytes);
    require(req->event.size() <= max_log_event_bytes);
    require(req->max_bytes >= 1 && req->max_bytes <= max_log_text_bytes);
  } else {
    const auto& res = std::get<log_response>(got.value());
    require(res.message.size() <= max_log_message_bytes);
    require(res.text.size() <= max_log_text_bytes);
  }
  const auto again_bytes = encode_log_message(got.value());
  require(again_bytes.size() <= max_log_wire_bytes);
  auto again = decode_log_message(again_bytes);
  require(again.has_value());
  require(again.value() == got.value());
  return 0;
}

// libFuzzer target for the record replication wire decoder
// (node/records/sync_messages.h): decode_sync_message() must never crash, hang
// or leak on any bytes; whatever it accepts must re-encode to bytes that decode
// to the same message, and every record inside an accepted push goes through
// records::decode as the replicator does (checked here; a violation aborts).
//
// Built by the clang fuzz build (MESHDEPLOY_FUZZ); by hand:
//   clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -I. -include utility
//     tests/fuzz/sync_messages_fuzz.cc node/records/sync_messages.cc node/records/record.cc
//     node/records/errc.cc -lfmt -lsodium
#include "node/records/record.h"
#include "node/records/sync_messages.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>

namespace {

using namespace meshdeploy::records;

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto got = decode_sync_message(bytes);
  if (!got) {
    require(!got.error().message.empty());
    return 0;
  }
  auto again = decode_sync_message(encode_sync_message(got.value()));
  require(again.has_value());
  require(again.value() == got.value());
  if (const auto* push = std::get_if<push_msg>(&got.value())) {
    for (const auto& r : push->records) {
      auto rec = decode(r);
      if (rec) require(decode(encode(rec.value())).has_value());
    }
  }
  return 0;
}

// libFuzzer target for the signed-record boundary: records::decode() and
// records::decode_payload() must never crash, hang or leak on any input, every
// refusal is one of the documented codes, and whatever decodes re-encodes to a
// fixed point (decode(encode(r)) == r, and for payloads encode∘decode∘encode ==
// encode). The signature check runs on every decoded record (it must fail
// cleanly, never crash).
//
// Built by the clang fuzz build (MESHDEPLOY_FUZZ, scripts/fuzz); by hand:
//   clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -I. -include utility
//     tests/fuzz/record_fuzz.cc node/records/{record,payloads,errc}.cc
//     node/security/identity.cc -lsodium -lfmt
#include "node/records/errc.h"
#include "node/records/payloads.h"
#include "node/records/record.h"
#include "node/security/identity.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

namespace {

using namespace meshdeploy;
using records::errc;

void require(bool condition) {
  if (!condition) std::abort();
}

bool documented(const boost::system::error_code& ec) {
  return ec == make_error_code(errc::malformed) || ec == make_error_code(errc::too_large) ||
         ec == make_error_code(errc::version_unsupported) || ec == make_error_code(errc::schema);
}

void check_payload(records::record_type t, std::span<const std::byte> bytes) {
  auto p = records::decode_payload(t, bytes);
  if (!p) {
    require(documented(p.error().code) && !p.error().message.empty());
    return;
  }
  require(records::type_of(p.value()) == t);
  const auto once = records::encode_payload(p.value());
  auto again = records::decode_payload(t, once);
  require(again.has_value());
  require(records::encode_payload(again.value()) == once);
  (void)records::expected_key(p.value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  // The whole input as an envelope.
  auto r = records::decode(bytes);
  if (!r) {
    require(documented(r.error().code) && !r.error().message.empty());
  } else {
    const auto encoded = records::encode(r.value());
    auto back = records::decode(encoded);
    require(back.has_value() && back.value() == r.value());
    require(records::hash_of(r.value()) == records::hash_of_encoded(encoded));
    (void)security::signature_valid(r.value());
    check_payload(r.value().type, r.value().payload);
  }
  // The input (after a type byte) as a bare payload, so the payload decoders get direct
  // coverage without the fuzzer first having to build an envelope.
  if (size >= 1) {
    const auto t = static_cast<records::record_type>(1 + data[0] % records::max_record_type);
    check_payload(t, bytes.subspan(1));
  }
  return 0;
}

// libFuzzer target for the gossip decryption path: open(), stream_opener (copying and in place) and
// parse_keyring must never crash, hang or leak on any input; every refusal is
// one of the documented codes; and what opens must be consistent.
//
// Built by the clang fuzz build (MESHDEPLOY_FUZZ, scripts/fuzz); by hand:
//   clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -I. -include utility
//     tests/fuzz/packet_crypto_fuzz.cc gossip/packet_crypto.cc gossip/keyring.cc
//     gossip/errc.cc -lsodium -lfmt
#include "gossip/errc.h"
#include "gossip/keyring.h"
#include "gossip/packet_crypto.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

namespace {

using namespace meshdeploy::gossip;

void require(bool condition) {
  if (!condition) std::abort();
}

secret_key fixed_key(std::uint8_t fill) {
  const std::vector<std::byte> raw(key_bytes, std::byte{fill});
  return secret_key::from_bytes(raw).value();
}

// Two keys with distinct ids (checked), the first primary.
const keyring& ring() {
  static const keyring r = [] {
    keyring k(fixed_key(1));
    for (std::uint8_t fill = 2; k.size() < 2; ++fill) {
      (void)k.install(fixed_key(fill));  // skips a fill whose id collides
    }
    return k;
  }();
  return r;
}

bool is_code(const meshdeploy::error& e, std::initializer_list<errc> codes) {
  for (errc c : codes) {
    if (e.code == make_error_code(c)) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  const associated_context ctx{.cluster_id = "fuzz", .version = 2, .min_version = 1};

  // 1. The input as a sealed packet.
  const auto opened = open(ring(), input, ctx);
  if (opened) {
    // Only possible if the fuzzer forged a tag: a bug in our use of the AEAD.
    std::abort();
  }
  require(is_code(opened.error(), {errc::malformed, errc::version_unsupported, errc::unknown_key,
                                   errc::auth_failed}));
  require(!opened.error().message.empty());

  // 2. The input as plaintext: it must seal and open back unchanged.
  const auto sealed = seal(ring(), input, ctx);
  require(sealed.size() == size + packet_overhead);
  const auto back = open(ring(), sealed, ctx);
  require(back && back.value() == std::vector<std::byte>(input.begin(), input.end()));

  // 3. The input as a stream, split into frames at every 0xff byte.
  stream_opener opener(ctx);
  std::size_t start = 0;
  for (std::size_t i = 0; i <= size; ++i) {
    if (i == size || data[i] == 0xff) {
      const auto frame = opener.open(ring(), input.subspan(start, i - start));
      require(!frame);
      require(is_code(frame.error(), {errc::malformed, errc::version_unsupported, errc::unknown_key,
                                      errc::auth_failed}));
      start = i + 1;
    }
  }

  // 3b. The same frames opened in place (the node's receive path), from a mutable copy: every
  // frame is refused alike; and the input sealed in place as a frame opens back unchanged.
  std::vector<std::byte> copy(input.begin(), input.end());
  stream_opener in_place(ctx);
  start = 0;
  for (std::size_t i = 0; i <= size; ++i) {
    if (i == size || data[i] == 0xff) {
      const auto frame =
          in_place.open_in_place(ring(), std::span<std::byte>(copy).subspan(start, i - start));
      require(!frame);
      require(is_code(frame.error(), {errc::malformed, errc::version_unsupported, errc::unknown_key,
                                      errc::auth_failed}));
      start = i + 1;
    }
  }
  stream_sealer sealer(ctx);
  stream_opener reopen(ctx);
  for (int n = 0; n < 2; ++n) {
    frame_buffer f = frame_buffer::copy_of(input);
    sealer.seal_in_place(ring(), f);
    const auto plain = reopen.open_in_place(ring(), f.bytes());
    require(plain && plain.value().size() == size &&
            std::equal(plain.value().begin(), plain.value().end(), input.begin()));
  }

  // 4. The input as a keyring file.
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = parse_keyring(text, "keyring");
  if (parsed) {
    require(parsed.value().size() >= 1 && parsed.value().size() <= max_keys);
    const auto again = parse_keyring(format_keyring(parsed.value()), "keyring");
    require(again && again.value().size() == parsed.value().size());
  } else {
    require(parsed.error().code == make_error_code(errc::keyring_invalid));
    require(parsed.error().message.rfind("keyring", 0) == 0);
  }
  return 0;
}

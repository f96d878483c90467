// libFuzzer target for authorisation: grant payloads from untrusted bytes, grant
// patterns (pattern_matches, validate_pattern) and verify() over a fuzzed
// record with a fuzzed grant history. Nothing may crash or hang; and a valid
// pattern without '*' always allows exactly its own action and resource.
//
// Input layout: [u8 split][grant payload bytes ...][record bytes ...]; the
// first byte picks where the grant payload ends (scaled to the input size).
//
// Built by the clang fuzz build (MESHDEPLOY_FUZZ, scripts/fuzz); by hand:
//   clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -I. -include utility
//     tests/fuzz/grant_fuzz.cc node/records/{record,payloads,errc}.cc
//     node/security/{identity,verifier}.cc -lsodium -lfmt
#include "node/records/errc.h"
#include "node/records/payloads.h"
#include "node/records/record.h"
#include "node/records/trust.h"
#include "node/security/identity.h"
#include "node/security/verifier.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace {

using namespace meshdeploy;

void require(bool condition) {
  if (!condition) std::abort();
}

// A fixed admin and one operator whose grant history holds the fuzzed grant.
const security::identity& admin() {
  static const security::identity id = security::generate_identity("admin");
  return id;
}

class one_grant final : public records::trust_source {
 public:
  std::vector<records::record> grant_history(const records::public_key& op) const override {
    if (grant_ && grant_->writer == admin().pub && op == op_) return {*grant_};
    return {};
  }
  std::optional<records::public_key> host_key(std::string_view name) const override {
    if (name == "h1") return op_;
    return std::nullopt;
  }
  std::optional<records::record> grant_;
  records::public_key op_{};
};

void check_patterns(const records::grant_payload& g) {
  static const char* const actions[] = {"define", "deploy", "stop", "read"};
  static const char* const resources[] = {"app/web", "app/web/prod", "config/OneAtATime",
                                          "app/a/b/c"};
  for (const std::string& pattern : g.allow) {
    const bool valid = security::validate_pattern(pattern).has_value();
    for (const char* a : actions) {
      for (const char* res : resources) (void)security::pattern_matches(pattern, a, res);
    }
    const auto colon = pattern.find(':');
    if (valid && colon != std::string::npos && pattern.find('*') == std::string::npos) {
      require(
          security::pattern_matches(pattern, pattern.substr(0, colon), pattern.substr(colon + 1)));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t rest = size - 1;
  const std::size_t split = rest * data[0] / 255;
  const std::span<const std::byte> all(reinterpret_cast<const std::byte*>(data + 1), rest);
  const auto grant_bytes = all.first(split);
  const auto record_bytes = all.subspan(split);

  one_grant trust;
  auto g = records::decode_payload(records::record_type::grant, grant_bytes);
  if (g) {
    const auto& grant = std::get<records::grant_payload>(g.value());
    check_patterns(grant);
    trust.op_ = grant.operator_key;
    records::record r;
    r.type = records::record_type::grant;
    r.key = records::to_hex(grant.operator_key);
    r.version = 1;
    r.payload = records::encode_payload(g.value());
    security::sign(r, admin());
    require(security::verify(r, trust, admin().pub).has_value());
    trust.grant_ = r;
  }

  auto rec = records::decode(record_bytes);
  if (!rec) return 0;
  // Unsigned fuzz records fail the signature; also try them re-signed as the operator would
  // not be able to (we have no operator secret), so sign with the admin key and point the
  // grant's operator at it to reach the authority rules.
  (void)security::verify(rec.value(), trust, admin().pub);
  records::record resigned = rec.value();
  security::sign(resigned, admin());
  trust.op_ = admin().pub;
  if (trust.grant_) {
    auto p = records::decode_payload(records::record_type::grant, trust.grant_->payload);
    auto grant = std::get<records::grant_payload>(p.value());
    grant.operator_key = admin().pub;
    trust.grant_->key = records::to_hex(admin().pub);
    trust.grant_->payload = records::encode_payload(grant);
    security::sign(*trust.grant_, admin());
  }
  auto v = security::verify(resigned, trust, admin().pub);
  (void)security::check_submission(resigned, trust, admin().pub, resigned.time_ms);
  if (v) {
    // Whatever verify() accepts is well-formed: its key is the payload's and the
    // payload round-trips.
    require(resigned.key == records::expected_key(v.value()));
    require(records::type_of(v.value()) == resigned.type);
  }
  return 0;
}

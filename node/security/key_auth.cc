#include "node/security/key_auth.h"

#include "node/records/errc.h"
#include "node/security/verifier.h"

#include <fmt/format.h>
#include <sodium.h>

#include <string>

namespace meshdeploy::security {
namespace {

std::string signed_text(std::string_view action, std::string_view key, std::int64_t time_ms) {
  std::string s("meshdeploy/keys/v1", 18);
  s.push_back('\0');
  s.append(action);
  s.push_back('\0');
  s.append(key);
  s.push_back('\0');
  s.append(std::to_string(time_ms));
  return s;
}

}  // namespace

records::signature sign_key_operation(const identity& admin, std::string_view action,
                                      std::string_view key, std::int64_t time_ms) {
  const std::string text = signed_text(action, key, time_ms);
  records::signature sig{};
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(text.data()),
                       text.size(), admin.secret.data());
  return sig;
}

result<void> check_key_operation(const records::public_key& admin, std::string_view action,
                                 std::string_view key, std::int64_t time_ms,
                                 const records::signature& sig, std::int64_t now_ms) {
  const std::string text = signed_text(action, key, time_ms);
  if (crypto_sign_verify_detached(sig.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                  text.size(), admin.data()) != 0) {
    return make_error(
        records::errc::bad_signature,
        fmt::format("key {}: not signed by the cluster admin key (pass --admin-key)", action));
  }
  const std::int64_t skew = time_ms > now_ms ? time_ms - now_ms : now_ms - time_ms;
  if (skew > max_clock_skew_ms) {
    return make_error(records::errc::stale,
                      fmt::format("key {}: signed {} s away from this node's clock (limit {} s)",
                                  action, skew / 1000, max_clock_skew_ms / 1000));
  }
  return ok();
}

}  // namespace meshdeploy::security

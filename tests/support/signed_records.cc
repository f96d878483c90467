#include "tests/support/signed_records.h"

#include <chrono>

namespace meshdeploy::test {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

records::record test_signers::grant(std::vector<std::string> allow, std::uint64_t version,
                                    const security::identity* who, bool revoked) const {
  const security::identity& target = who ? *who : op;
  records::grant_payload g;
  g.operator_name = target.name;
  g.operator_key = target.pub;
  g.allow = std::move(allow);
  g.revoked = revoked;
  // Grants are dated a little in the past so records signed "now" fall under them.
  return sign(g, version, &admin, wall_ms() - 1000);
}

records::record test_signers::sign(const records::payload& p, std::uint64_t version,
                                   const security::identity* by, std::int64_t time_ms) const {
  records::record r;
  r.type = records::type_of(p);
  r.key = records::expected_key(p);
  r.version = version;
  r.time_ms = time_ms != 0 ? time_ms : wall_ms();
  r.via = "test";
  r.payload = records::encode_payload(p);
  security::sign(r, by ? *by : op);
  return r;
}

std::string hex_of(const records::record& r) {
  const auto bytes = records::encode(r);
  return records::to_hex(
      std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

}  // namespace meshdeploy::test

// Signed records for tests: a cluster admin and an operator with real Ed25519
// keys, and helpers that sign payloads the way the CLI does.
#pragma once

#include "node/records/payloads.h"
#include "node/records/record.h"
#include "node/security/identity.h"

#include <cstdint>
#include <string>
#include <vector>

namespace meshdeploy::test {

// Milliseconds since the Unix epoch, now.
std::int64_t wall_ms();

struct test_signers {
  security::identity admin = security::generate_identity("admin");
  security::identity op = security::generate_identity("tester");

  // An admin-signed grant for `who` (default: op) allowing `allow`.
  records::record grant(std::vector<std::string> allow = {"*:*"}, std::uint64_t version = 1,
                        const security::identity* who = nullptr, bool revoked = false) const;
  // `p` signed by `by` (default: op) at `time_ms` (default: now).
  records::record sign(const records::payload& p, std::uint64_t version = 1,
                       const security::identity* by = nullptr, std::int64_t time_ms = 0) const;
};

// The API form of a record: hex of its encoding.
std::string hex_of(const records::record& r);

}  // namespace meshdeploy::test

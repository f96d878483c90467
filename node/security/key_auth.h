// Authorising cluster key rotation: `keys install|use|remove` change what
// every member encrypts with, so the node that receives one through its API
// accepts it only signed by the cluster admin key (docs/access.md). What is
// signed: "meshdeploy/keys/v1\0" ACTION "\0" KEY "\0" TIME (decimal ms), with
// Ed25519; the node refuses signatures more than max_clock_skew_ms old or
// ahead, so a captured request cannot be replayed later.
#pragma once

#include "node/records/record.h"
#include "node/security/identity.h"
#include "storage/result.h"

#include <cstdint>
#include <string_view>

namespace meshdeploy::security {

records::signature sign_key_operation(const identity& admin, std::string_view action,
                                      std::string_view key, std::int64_t time_ms);

// Errors (records::errc): bad_signature (not the admin's signature over exactly this),
// stale (time more than 5 minutes from now_ms).
result<void> check_key_operation(const records::public_key& admin, std::string_view action,
                                 std::string_view key, std::int64_t time_ms,
                                 const records::signature& sig, std::int64_t now_ms);

}  // namespace meshdeploy::security

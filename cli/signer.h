// Signing on the operator's side: the CLI turns each mutating command into a
// record (node/records/payloads.h) signed with the operator's key (--identity
// FILE or MESHDEPLOY_IDENTITY), so the node it talks to, and every other node,
// can check who asked and whether their grant allows it (docs/security.md).
#pragma once

#include "cli/client.h"
#include "node/records/payloads.h"
#include "node/records/record.h"
#include "node/security/identity.h"
#include "storage/result.h"

#include <string>

namespace meshdeploy::cli {

// Loads the operator identity from `path`, or from MESHDEPLOY_IDENTITY when `path` is empty.
// The error says how to get one when neither is set.
result<security::identity> load_operator_identity(const std::string& path);

// Signs `payload` as `id` for submission through the node behind `c`: the key is
// records::expected_key(payload); versioned types get one above the version the node holds
// (1 when it holds none); `via` is the node's name (GET /v1/health). Errors: the node is
// unreachable or answers badly.
result<records::record> sign_for_node(const client& c, const security::identity& id,
                                      const records::payload& payload);

// The record as the hex string the API takes ({"record": HEX}).
std::string record_hex(const records::record& r);

}  // namespace meshdeploy::cli

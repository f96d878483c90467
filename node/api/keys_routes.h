// Cluster key rotation over the node API (docs/api.md "Keys", docs/security.md
// "Key rotation"):
//   GET  /v1/keys                              list the keys of every member
//   POST /v1/keys/install  {"key": "<base64>"}  install a key everywhere
//   POST /v1/keys/use      {"key": "<base64>"}  make it the primary everywhere
//   POST /v1/keys/remove   {"key": "<base64>"}  remove it everywhere
// Keys travel in bodies, never in URLs. Each request runs
// mesh::gossip_driver::run_key_operation and answers (long poll, a few
// seconds) with
//   {"action": "install", "ok": bool, "members": N, "acknowledged": k,
//    "not_acknowledged": [name...], "failed": [{"name", "error"}...],
//    "keys": [{"id", "fingerprint", "members": n, "primary_on": n, "local": bool,
//              "local_primary": bool}...]}
// where ok means every live member answered and succeeded. Refusals change
// nothing: 400 InvalidArgument (bad key text or body), 409 Conflict (use of a
// key some member lacks, remove of the primary, key id clash, full keyring,
// gossip off). Other methods on these paths: 405.
#pragma once

#include "node/api/router.h"
#include "node/mesh/gossip_driver.h"

#include <functional>
#include <string>

namespace meshdeploy::api {

// A handler for router::add_route_handler answering the routes above and nothing else
// (std::nullopt). `driver` must outlive it. `notify` wakes the server's long poll
// (api::server::notify). Not thread-safe: the server calls it on the io thread, the driver's
// thread, like every non-upload route.
router::route_handler keys_routes(mesh::gossip_driver& driver,
                                  std::function<void(const std::string& wait_id)> notify);

// The answer document above for a finished key operation.
nlohmann::json key_report_json(const mesh::key_report& r);

}  // namespace meshdeploy::api

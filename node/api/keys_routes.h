// Cluster key rotation over the node API (docs/api.md "Keys", docs/security.md
// "Key rotation"):
//   GET  /v1/keys                              list the keys of every member
//   POST /v1/keys/install  {"key": "<base64>", "time": MS, "signature": HEX}  install everywhere
//   POST /v1/keys/use      {... same ...}                                   make it primary
//   POST /v1/keys/remove   {... same ...}                                   remove everywhere
// The POSTs must carry the cluster admin's signature (node/security/key_auth.h); without it
// they answer 403 PermissionDenied.
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
// `admin` is the cluster admin's public key, which must sign every key operation.
router::route_handler keys_routes(mesh::gossip_driver& driver,
                                  std::function<void(const std::string& wait_id)> notify,
                                  records::public_key admin);

// The answer document above for a finished key operation.
nlohmann::json key_report_json(const mesh::key_report& r);

}  // namespace meshdeploy::api

// CodeDeploy's API (JSON 1.1: POST / with X-Amz-Target: CodeDeploy_20141006.<Operation>)
// mapped onto the node's registry and signed records. The operations, fields and differences
// are listed in docs/aws-compatibility.md.
//
// Each request is authenticated with SigV4 (node/aws/sigv4.h) against the access keys
// (node/aws/access_keys.h). Reads answer from the registry, as the native GET routes do, when
// the key's grant allows read on the resource. Writes become records signed with the key's
// identity and submitted through the node's own native routes (POST /v1/records, POST
// /v1/revisions, GET .../plan), so they pass exactly the checks an operator's CLI request
// passes (signature, grant, CodeDeploy's create rules) and replicate like any record.
//
// Threading: call on the node's io thread (writes of deployments read the mesh deployer's
// state there, like the native record routes). With `offload` set, the copying and hashing of
// an S3 object that becomes a revision runs where `offload` puts it (the node's pool).
#pragma once

#include "node/api/router.h"
#include "node/aws/access_keys.h"
#include "node/aws/object_store.h"
#include "node/aws/paging.h"
#include "node/deploy/registry.h"
#include "node/records/store.h"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace meshdeploy::aws {

inline constexpr std::string_view codedeploy_target_prefix = "CodeDeploy_20141006.";
// How long an offloaded registration may take before the server answers 504 (it goes on).
inline constexpr std::chrono::minutes offload_timeout{10};

struct codedeploy_context {
  deploy::registry& reg;
  const records::store& store;
  const access_keys& keys;
  // The S3 front end's objects, for revisionType S3; nullptr when the node serves no S3 API.
  const object_store* objects = nullptr;
  // Temporary bundles and the local index of revision locations (<data-dir>/aws).
  std::filesystem::path work_dir;
  // The node's own API (router::handle), for the native write routes.
  std::function<api::api_response(const api::api_request&)> native;
  std::string node_name;
  // Wall clock, milliseconds since the epoch (SigV4 skew, record times).
  std::function<std::int64_t()> now_ms;
  // Items per page of the List* operations (node/aws/paging.h); tests use small pages.
  std::size_t page_size = default_page_size;
  // Runs `work` on a thread that may block, then `then` on the io thread. The front end gives
  // the node's pool: registering an S3 object as a revision (copying and hashing it, seconds for
  // a large bundle) happens there, and the answer is deferred until it is done. Empty: the
  // work runs on the calling thread (tests).
  std::function<void(std::function<void()> work, std::function<void()> then)> offload;
};

// The route handler: answers requests that carry an X-Amz-Target header (nullopt for others,
// so it can sit in front of the native routes). With `answer_all` (a port of its own, --aws-api)
// every request is answered, those without the header with UnknownOperationException.
api::router::route_handler make_codedeploy_routes(codedeploy_context ctx, bool answer_all);

// The API latency `route` label of a request (api::server_options::metrics_route):
// "CodeDeploy:<Operation>" for an operation this API answers, "CodeDeploy:other" for any other
// X-Amz-Target, "" without the header (a native request).
std::string codedeploy_route(const api::api_request& req);

}  // namespace meshdeploy::aws

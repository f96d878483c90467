// The S3 subset the aws CLI needs to upload and fetch bundles (`aws s3 cp`, `aws s3 ls`), served
// on the node's --s3-api address: ListBuckets, CreateBucket, HeadBucket, ListObjectsV2,
// PutObject, HeadObject, GetObject (with Range), DeleteObject, and multipart upload
// (CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload). Path-style
// addressing (http://HOST:PORT/BUCKET/KEY, what the CLI sends to an IP endpoint) and
// virtual-host style for BUCKET.localhost. REST-XML answers and S3's error documents. Details:
// docs/aws-compatibility.md "S3".
//
// Every request is SigV4-signed (service "s3") with an access key of node/aws/access_keys.h;
// any active key may read and write objects (they are this node's local files and become
// revisions only through CodeDeploy calls, which check the key's grant).
//
// Threading: any thread (the S3 server runs its routes on the worker pool).
#pragma once

#include "node/api/router.h"
#include "node/aws/access_keys.h"
#include "node/aws/object_store.h"

#include <cstdint>
#include <functional>

namespace meshdeploy::aws {

struct s3_context {
  object_store& objects;
  const access_keys& keys;
  std::function<std::int64_t()> now_ms;
};

// Answers every request (a port of its own).
api::router::route_handler make_s3_routes(s3_context ctx);

// The API latency `route` label of an S3 request (api::server_options::metrics_route), by what
// its path names: "S3:service" (/), "S3:bucket" (/BUCKET), "S3:object" (/BUCKET/KEY).
std::string s3_route(const api::api_request& req);

// Bodies the S3 server reads into memory: a PutObject or UploadPart (the CLI's parts are
// 8 MiB; its single PUTs are under 8 MiB).
inline constexpr std::uint64_t max_s3_body_bytes = 64ull << 20;
// The largest GetObject answered without a Range (the CLI fetches large objects in ranges).
inline constexpr std::uint64_t max_s3_get_bytes = 256ull << 20;

}  // namespace meshdeploy::aws

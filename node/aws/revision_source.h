// Turns a CodeDeploy RevisionLocation into a bundle file and the revision record that names it:
// an S3 object this node holds (revisionType S3, node/aws/object_store.h), or an AppSpec given
// inline (revisionType String or AppSpecContent: the bundle is a tar holding only appspec.yml).
// The caller signs and uploads the result through the native route (POST /v1/revisions), which
// checks it like any operator upload. docs/aws-compatibility.md "Revisions".
//
// Threading: blocking file I/O and hashing; any thread.
#pragma once

#include "node/aws/object_store.h"
#include "node/records/payloads.h"
#include "storage/result.h"

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <string>

namespace meshdeploy::aws {

struct prepared_revision {
  records::revision_payload payload;  // app, id, format, size, manifest (origin: the caller's)
  std::filesystem::path file;         // the bundle, inside the work dir; the caller removes it
};

// Copies the object's bytes into `work_dir` and describes them as a revision of `app`. Errors:
// deploy::errc::not_found (no such object), agent errors when the bytes are no zip/tar/tgz,
// io errors.
result<prepared_revision> prepare_from_object(const object_store& objects,
                                              const std::string& bucket, const std::string& key,
                                              const std::string& app,
                                              const std::filesystem::path& work_dir);
// Packs `appspec` as appspec.yml into a tar in `work_dir`. Errors: invalid_argument (empty or
// over 1 MiB), io errors.
result<prepared_revision> prepare_from_appspec(const std::string& appspec, const std::string& app,
                                               const std::filesystem::path& work_dir);

}  // namespace meshdeploy::aws

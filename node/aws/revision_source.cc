#include "node/aws/revision_source.h"

#include "node/agent/revision.h"
#include "node/deploy/errc.h"
#include "node/swarm/manifest.h"

#include <fmt/format.h>
#include <sodium.h>

#include <fstream>

namespace meshdeploy::aws {

namespace fs = std::filesystem;

namespace {

std::string random_name(std::string_view prefix) {
  unsigned char b[8];
  randombytes_buf(b, sizeof b);
  std::string s(prefix);
  for (unsigned char c : b) s += fmt::format("{:02x}", c);
  return s;
}

result<prepared_revision> describe(const fs::path& source, const std::string& app,
                                   const fs::path& work_dir) {
  auto bundle = agent::prepare_revision(source, work_dir);
  if (!bundle) return bundle.error();
  auto pieces = swarm::manifest_of_file(bundle.value().archive);
  if (!pieces) return pieces.error();
  prepared_revision out;
  out.payload.app = app;
  out.payload.id = bundle.value().id;
  out.payload.format = std::string(agent::to_string(bundle.value().format));
  out.payload.size = bundle.value().size;
  out.payload.manifest = swarm::manifest_id(swarm::encode_manifest(pieces.value()));
  out.file = bundle.value().archive;
  return out;
}

}  // namespace

result<prepared_revision> prepare_from_object(const object_store& objects,
                                              const std::string& bucket, const std::string& key,
                                              const std::string& app, const fs::path& work_dir) {
  MESH_TRY(auto info, objects.head(bucket, key));
  if (!info) {
    return make_error(deploy::errc::not_found,
                      fmt::format("no object s3://{}/{} on this node (upload it with aws s3 cp "
                                  "to this node's --s3-api endpoint)",
                                  bucket, key));
  }
  const fs::path dir = work_dir / random_name("s3-");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(deploy::errc::internal, fmt::format("cannot create {}", dir.string()));
  auto out = describe(objects.data_path(bucket, key), app, dir);
  if (!out) fs::remove_all(dir, ec);
  return out;
}

result<prepared_revision> prepare_from_appspec(const std::string& appspec, const std::string& app,
                                               const fs::path& work_dir) {
  if (appspec.empty() || appspec.size() > (1u << 20)) {
    return make_error(deploy::errc::invalid_argument,
                      "the AppSpec content must be 1 byte to 1 MiB");
  }
  const fs::path dir = work_dir / random_name("appspec-");
  std::error_code ec;
  fs::create_directories(dir / "src", ec);
  if (ec) return make_error(deploy::errc::internal, fmt::format("cannot create {}", dir.string()));
  {
    std::ofstream out(dir / "src" / "appspec.yml", std::ios::binary);
    out << appspec;
    if (!out) {
      fs::remove_all(dir, ec);
      return make_error(deploy::errc::internal, "cannot write the AppSpec");
    }
  }
  auto out = describe(dir / "src", app, dir);
  if (!out) fs::remove_all(dir, ec);
  return out;
}

}  // namespace meshdeploy::aws

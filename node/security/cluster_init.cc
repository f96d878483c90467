#include "node/security/cluster_init.h"

#include "gossip/keyring.h"
#include "node/records/errc.h"
#include "node/records/payloads.h"
#include "node/security/verifier.h"

#include <fmt/format.h>
#include <sodium.h>

#include <array>
#include <chrono>
#include <system_error>

namespace meshdeploy::security {
namespace {

using records::errc;

result<void> check_operator_name(const std::string& name) {
  auto bad = [&](std::string_view why) {
    return make_error(errc::schema, fmt::format("operator name \"{}\": {}", name, why));
  };
  if (name.empty() || name.size() > 128) return bad("must be 1..128 characters");
  for (char c : name) {
    const bool okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '_' || c == '-';
    if (!okc) return bad("may only contain A-Z a-z 0-9 . _ -");
  }
  if (name.front() == '.') return bad("must not start with '.'");
  if (name == "admin") return bad("\"admin\" is the cluster admin's name");
  return ok();
}

std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

}  // namespace

cluster_files cluster_file_paths(const std::filesystem::path& dir,
                                 const std::string& operator_name) {
  return cluster_files{dir / "keyring.txt",
                       dir / "admin.key",
                       dir / "admin.pub",
                       dir / (operator_name + ".key"),
                       dir / (operator_name + ".pub"),
                       dir / (operator_name + ".grant")};
}

result<records::record> make_grant(const identity& admin, const std::string& op_name,
                                   const records::public_key& op, std::vector<std::string> allow,
                                   bool revoked, std::uint64_t version, std::int64_t now_ms) {
  if (version == 0) return make_error(errc::schema, "grant version must be >= 1");
  for (const std::string& pattern : allow) MESH_CHECK(validate_pattern(pattern));
  records::record r;
  r.type = records::record_type::grant;
  r.key = records::to_hex(op);
  r.version = version;
  r.time_ms = now_ms;
  r.payload =
      records::encode_payload(records::grant_payload{op_name, op, std::move(allow), revoked});
  // Refuse to sign what every node would refuse to accept.
  auto back = records::decode_payload(r.type, r.payload);
  if (!back) return back.error().with_context("grant for operator " + op_name);
  sign(r, admin);
  return r;
}

result<cluster_files> init_cluster(const std::filesystem::path& dir,
                                   const std::string& operator_name) {
  MESH_CHECK(check_operator_name(operator_name));
  const cluster_files files = cluster_file_paths(dir, operator_name);
  const std::array<const std::filesystem::path*, 6> all{&files.keyring,      &files.admin_key,
                                                        &files.admin_pub,    &files.operator_key,
                                                        &files.operator_pub, &files.grant};
  // Check everything before writing anything: a half-initialised cluster directory next to
  // an existing one is worse than a clear refusal.
  for (const auto* p : all) {
    std::error_code ec;
    const auto st = std::filesystem::symlink_status(*p, ec);
    if (std::filesystem::exists(st)) {
      return make_error(
          errc::exists,
          fmt::format("{}: already exists (refusing to overwrite; nothing written)", p->string()));
    }
  }
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return make_error(errc::io,
                        fmt::format("{}: cannot create directory: {}", dir.string(), ec.message()));
    }
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, ec);
    if (ec) {
      return make_error(errc::io,
                        fmt::format("{}: cannot chmod 700: {}", dir.string(), ec.message()));
    }
  }

  std::vector<std::filesystem::path> written;
  auto step = [&](const std::filesystem::path& p, result<void> r) -> result<void> {
    if (r) {
      written.push_back(p);
      return ok();
    }
    // Undo this call's files so a retry starts clean (O_EXCL would otherwise refuse).
    for (const auto& w : written) std::filesystem::remove(w, ec);
    return std::move(r).error();
  };

  std::string ring_text = gossip::format_keyring(gossip::keyring(gossip::secret_key::generate()));
  auto wrote_ring = write_new_file(files.keyring, as_bytes(ring_text), 0600);
  sodium_memzero(ring_text.data(), ring_text.size());
  MESH_CHECK(step(files.keyring, std::move(wrote_ring)));

  identity admin = generate_identity("admin");
  identity op = generate_identity(operator_name);
  auto finish = [&]() -> result<void> {
    MESH_CHECK(step(files.admin_key, save_identity(admin, files.admin_key)));
    MESH_CHECK(
        step(files.admin_pub, save_public_key(admin.name, admin.pub, files.admin_pub, 0600)));
    MESH_CHECK(step(files.operator_key, save_identity(op, files.operator_key)));
    MESH_CHECK(
        step(files.operator_pub, save_public_key(op.name, op.pub, files.operator_pub, 0600)));
    auto grant = make_grant(admin, operator_name, op.pub, {"*:*"}, false, 1,
                            std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
    if (!grant) return step(files.grant, std::move(grant).error());
    const std::vector<std::byte> bytes = records::encode(grant.value());
    MESH_CHECK(step(files.grant, write_new_file(files.grant, bytes, 0600)));
    return ok();
  };
  auto done = finish();
  sodium_memzero(admin.secret.data(), admin.secret.size());
  sodium_memzero(op.secret.data(), op.secret.size());
  if (!done) return std::move(done).error();
  return files;
}

}  // namespace meshdeploy::security

#include "cli/signer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>

namespace meshdeploy::cli {

using nlohmann::json;

result<security::identity> load_operator_identity(const std::string& path) {
  std::string file = path;
  if (file.empty()) {
    if (const char* env = std::getenv("MESHDEPLOY_IDENTITY"); env != nullptr) file = env;
  }
  if (file.empty()) {
    return make_error(client_errc::protocol,
                      "this command changes the cluster, so it must be signed: pass --identity "
                      "FILE or set MESHDEPLOY_IDENTITY (make a key with: meshdeploy operator "
                      "create --name NAME --out FILE, then have the admin grant it)");
  }
  auto id = security::load_identity(file);
  if (!id) return id.error().with_context("--identity");
  return id;
}

namespace {

// GET a JSON document; nullopt on 404.
result<std::optional<json>> get_json(const client& c, const std::string& target) {
  MESH_TRY(auto rep, c.call("GET", target, {}, std::chrono::seconds(10)));
  if (rep.status == 404) return std::optional<json>();
  json j = json::parse(rep.body, nullptr, false);
  if (rep.status != 200 || !j.is_object()) {
    return make_error(client_errc::protocol,
                      fmt::format("GET {}: the node answered HTTP {}", target, rep.status));
  }
  return std::optional<json>(std::move(j));
}

}  // namespace

result<records::record> sign_for_node(const client& c, const security::identity& id,
                                      const records::payload& payload) {
  records::record r;
  r.type = records::type_of(payload);
  r.key = records::expected_key(payload);
  r.payload = records::encode_payload(payload);
  r.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  MESH_TRY(auto health, get_json(c, "/v1/health"));
  if (health) r.via = health->value("name", "");
  if (records::is_versioned(r.type)) {
    std::string target = fmt::format("/v1/records/{}/{}", records::to_string(r.type), r.key);
    MESH_TRY(auto current, get_json(c, target));
    if (current) r.version = current->value("version", std::uint64_t{0}) + 1;
  }
  security::sign(r, id);
  return r;
}

std::string record_hex(const records::record& r) {
  const auto bytes = records::encode(r);
  return records::to_hex(
      std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

}  // namespace meshdeploy::cli

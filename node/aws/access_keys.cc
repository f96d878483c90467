#include "node/aws/access_keys.h"

#include "node/records/errc.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace meshdeploy::aws {

using nlohmann::json;

result<access_keys> access_keys::load(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return make_error(records::errc::not_found,
                      fmt::format("{}: no such credentials file", file.string()));
  }
  if ((st.st_mode & 077) != 0) {
    return make_error(records::errc::permission_denied,
                      fmt::format("{}: others may read this secret file; chmod 600 {}",
                                  file.string(), file.string()));
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) {
    return make_error(records::errc::io, fmt::format("{}: cannot read", file.string()));
  }
  const json j = json::parse(text.str(), nullptr, false);
  auto bad = [&](std::string what) {
    return make_error(records::errc::malformed, fmt::format("{}: {}", file.string(), what));
  };
  if (j.is_discarded() || !j.is_object() || !j.contains("accessKeys") ||
      !j["accessKeys"].is_array()) {
    return bad("not a JSON object with an array 'accessKeys'");
  }
  access_keys out;
  std::size_t n = 0;
  for (const auto& e : j["accessKeys"]) {
    ++n;
    auto str = [&](const char* k) -> result<std::string> {
      if (!e.is_object() || !e.contains(k) || !e[k].is_string() ||
          e[k].get<std::string>().empty()) {
        return bad(fmt::format("entry {}: field '{}' must be a non-empty string", n, k));
      }
      return e[k].get<std::string>();
    };
    MESH_TRY(std::string id, str("accessKeyId"));
    MESH_TRY(std::string secret, str("secretAccessKey"));
    MESH_TRY(std::string op, str("operator"));
    MESH_TRY(std::string idfile, str("identityFile"));
    if (id.size() > 128 || secret.size() > 128) {
      return bad(fmt::format("entry {}: accessKeyId and secretAccessKey are at most 128 bytes", n));
    }
    std::filesystem::path p = idfile;
    if (p.is_relative()) p = file.parent_path() / p;
    auto ident = security::load_identity(p);
    if (!ident) return ident.error().with_context(fmt::format("{}: entry {}", file.string(), n));
    if (out.find(id) != nullptr) return bad(fmt::format("entry {}: access key {} repeats", n, id));
    out.add(access_key{std::move(id), std::move(secret), std::move(op), std::move(ident).value()});
  }
  return out;
}

const access_key* access_keys::find(const std::string& id) const {
  auto it = keys_.find(id);
  return it == keys_.end() ? nullptr : &it->second;
}

void access_keys::add(access_key k) {
  std::string id = k.id;
  keys_.insert_or_assign(std::move(id), std::move(k));
}

std::string new_access_key_id() {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out = "MDAK";
  for (int i = 0; i < 16; ++i) out += alphabet[randombytes_uniform(32)];
  return out;
}

std::string new_secret_access_key() {
  unsigned char raw[30];
  randombytes_buf(raw, sizeof raw);
  char b64[sodium_base64_ENCODED_LEN(30, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
  sodium_memzero(raw, sizeof raw);
  return b64;
}

}  // namespace meshdeploy::aws

#include "node/mesh/keyring_store.h"

#include "gossip/errc.h"
#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace meshdeploy::mesh {

namespace fs = std::filesystem;
using nlohmann::json;

std::string key_fingerprint(const gossip::secret_key& k) {
  static constexpr char label[] = "meshdeploy.key-fingerprint.v1";
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 16);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(label), sizeof label - 1);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(k.bytes().data()),
                            k.bytes().size());
  unsigned char out[16];
  crypto_generichash_final(&st, out, sizeof out);
  std::string hex;
  for (int i = 0; i < 8; ++i) hex += fmt::format("{:02x}", out[i]);
  return hex;
}

std::string key_id_hex(const gossip::secret_key& k) {
  return fmt::format("{:02x}", static_cast<unsigned>(k.id()));
}

result<void> save_keyring_state(const fs::path& path, const keyring_state& s) {
  json doc = {{"format", 1}, {"generation", s.generation}, {"removed", s.removed}};
  json keys = json::array();
  for (const auto& k : s.ring.list()) keys.push_back(k.to_base64());
  doc["keys"] = std::move(keys);
  std::string text = doc.dump(2) + "\n";
  const fs::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return make_error(deploy::errc::internal,
                      fmt::format("keyring {}: cannot create: {}", tmp.string(), strerror(errno)));
  }
  ::fchmod(fd, 0600);
  std::size_t off = 0;
  bool written = true;
  while (off < text.size()) {
    const auto n = ::write(fd, text.data() + off, text.size() - off);
    if (n <= 0) {
      written = false;
      break;
    }
    off += static_cast<std::size_t>(n);
  }
  written = written && ::fsync(fd) == 0;
  ::close(fd);
  sodium_memzero(text.data(), text.size());
  if (!written) {
    ::unlink(tmp.c_str());
    return make_error(deploy::errc::internal,
                      fmt::format("keyring {}: cannot write: {}", tmp.string(), strerror(errno)));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    return make_error(
        deploy::errc::internal,
        fmt::format("keyring {}: cannot rename into place: {}", path.string(), ec.message()));
  }
  return ok();
}

result<keyring_state> load_keyring_state(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    return make_error(gossip::errc::keyring_invalid,
                      fmt::format("keyring {}: cannot read", path.string()));
  }
  std::stringstream text;
  text << in.rdbuf();
  const json doc = json::parse(text.str(), nullptr, false);
  auto bad = [&](std::string_view what) {
    return make_error(gossip::errc::keyring_invalid,
                      fmt::format("keyring {}: {}", path.string(), what));
  };
  if (!doc.is_object()) return bad("not a JSON object");
  if (!doc.contains("keys") || !doc["keys"].is_array() || doc["keys"].empty()) {
    return bad("\"keys\" must be a non-empty array");
  }
  std::string lines;
  for (const auto& k : doc["keys"]) {
    if (!k.is_string()) return bad("\"keys\" entries must be strings");
    lines += k.get<std::string>() + "\n";
  }
  auto ring = gossip::parse_keyring(lines, path.string() + " keys");
  sodium_memzero(lines.data(), lines.size());
  if (!ring) return ring.error();
  keyring_state s{std::move(ring).value(), 0, {}};
  if (doc.contains("generation")) {
    if (!doc["generation"].is_number_unsigned()) return bad("\"generation\" must be a number");
    s.generation = doc["generation"].get<std::uint64_t>();
  }
  if (doc.contains("removed")) {
    if (!doc["removed"].is_array()) return bad("\"removed\" must be an array");
    for (const auto& r : doc["removed"]) {
      if (!r.is_string()) return bad("\"removed\" entries must be strings");
      s.removed.push_back(r.get<std::string>());
    }
  }
  return s;
}

result<keyring_state> combine_keyrings(const fs::path& persisted,
                                       const gossip::keyring& from_flag) {
  std::error_code ec;
  if (!fs::exists(persisted, ec)) return keyring_state{from_flag, 0, {}};
  MESH_TRY(auto s, load_keyring_state(persisted));
  for (const auto& k : from_flag.list()) {
    const auto fp = key_fingerprint(k);
    if (std::find(s.removed.begin(), s.removed.end(), fp) != s.removed.end()) continue;
    // install() is a no-op for a key already present; a key-id clash or a full ring leaves the
    // persisted ring as it is.
    (void)s.ring.install(k);
  }
  return s;
}

}  // namespace meshdeploy::mesh

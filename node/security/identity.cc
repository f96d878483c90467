#include "node/security/identity.h"

#include "node/agent/unique_fd.h"
#include "node/records/errc.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace meshdeploy::security {
namespace {

using agent::errno_text;
using agent::unique_fd;
using records::errc;

// libsodium must be initialised before its RNG is used; sodium_init is idempotent and
// thread-safe, so a function-local static is enough.
void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) std::abort();
}

constexpr std::size_t max_key_file_bytes = 64 * 1024;

// Reads a small file whole. `mode_out` receives st_mode. Errors: not_found, io, too_large.
result<std::string> read_small_file(const std::filesystem::path& path, mode_t* mode_out) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    const int e = errno;
    if (e == ENOENT)
      return make_error(errc::not_found, fmt::format("{}: no such file", path.string()));
    return make_error(errc::io, fmt::format("{}: cannot open: {}", path.string(), errno_text(e)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return make_error(errc::io,
                      fmt::format("{}: cannot stat: {}", path.string(), errno_text(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(errc::io, fmt::format("{}: not a regular file", path.string()));
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_key_file_bytes) {
    return make_error(errc::too_large, fmt::format("{}: {} bytes, a key file is at most {}",
                                                   path.string(), st.st_size, max_key_file_bytes));
  }
  if (mode_out != nullptr) *mode_out = st.st_mode;
  std::string text;
  char buf[4096];
  for (;;) {  // bounded: at most max_key_file_bytes / 1 iterations before the size check trips
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(errc::io,
                        fmt::format("{}: cannot read: {}", path.string(), errno_text(errno)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_key_file_bytes) {
      return make_error(errc::too_large,
                        fmt::format("{}: over {} bytes", path.string(), max_key_file_bytes));
    }
  }
  return text;
}

std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Field `field` of the JSON object `j` as a string, or malformed naming the file and field.
result<std::string> string_field(const nlohmann::json& j, const char* field,
                                 const std::filesystem::path& path) {
  const auto it = j.find(field);
  if (it == j.end()) {
    return make_error(errc::malformed,
                      fmt::format("{}: missing field \"{}\"", path.string(), field));
  }
  if (!it->is_string()) {
    return make_error(errc::malformed,
                      fmt::format("{}: field \"{}\" is not a string", path.string(), field));
  }
  return it->get<std::string>();
}

result<nlohmann::json> parse_object(const std::string& text, const std::filesystem::path& path) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return make_error(errc::malformed, fmt::format("{}: not valid JSON", path.string()));
  }
  if (!j.is_object()) {
    return make_error(errc::malformed, fmt::format("{}: not a JSON object", path.string()));
  }
  return j;
}

result<records::public_key> parse_public(std::string_view hex, const std::filesystem::path& path,
                                         const char* field) {
  auto k = records::public_key_from_hex(hex);
  if (!k) {
    return make_error(errc::malformed,
                      fmt::format("{}: field \"{}\": {}", path.string(), field, k.error().message));
  }
  return k.value();
}

std::string_view trim(std::string_view s) {
  const auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

identity generate_identity(std::string name) {
  ensure_sodium();
  identity id;
  id.name = std::move(name);
  crypto_sign_keypair(id.pub.data(), id.secret.data());
  return id;
}

result<void> write_new_file(const std::filesystem::path& path, std::span<const std::byte> bytes,
                            unsigned mode) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      static_cast<mode_t>(mode)));
  if (!fd) {
    const int e = errno;
    if (e == EEXIST) {
      return make_error(errc::exists,
                        fmt::format("{}: already exists (refusing to overwrite)", path.string()));
    }
    return make_error(errc::io, fmt::format("{}: cannot create: {}", path.string(), errno_text(e)));
  }
  auto fail = [&](const char* what, int e) -> error {
    fd.reset();
    ::unlink(path.c_str());
    return make_error(errc::io,
                      fmt::format("{}: cannot {}: {}", path.string(), what, errno_text(e)));
  };
  // The umask may only have narrowed `mode`; set it exactly (0600 stays 0600, 0644 stays 0644).
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) return fail("chmod", errno);
  std::size_t done = 0;
  while (done < bytes.size()) {  // bounded: each pass writes >= 1 byte or fails
    const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write", errno);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync", errno);
  if (fd.close() != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    return make_error(errc::io, fmt::format("{}: cannot close: {}", path.string(), errno_text(e)));
  }
  return ok();
}

result<void> save_identity(const identity& id, const std::filesystem::path& path) {
  nlohmann::json j;
  j["name"] = id.name;
  j["public"] = records::to_hex(id.pub);
  j["secret"] = records::to_hex(id.secret);
  std::string text = j.dump(2) + "\n";
  auto r = write_new_file(path, as_bytes(text), 0600);
  sodium_memzero(text.data(), text.size());
  std::string& secret_hex = j["secret"].get_ref<std::string&>();
  sodium_memzero(secret_hex.data(), secret_hex.size());
  return r;
}

result<identity> load_identity(const std::filesystem::path& path) {
  ensure_sodium();
  mode_t mode = 0;
  MESH_TRY(std::string text, read_small_file(path, &mode));
  if ((mode & 077) != 0) {
    sodium_memzero(text.data(), text.size());
    return make_error(errc::permission_denied,
                      fmt::format("{}: secret key file has mode {:04o}, readable by others; run "
                                  "chmod 600 {}",
                                  path.string(), mode & 07777, path.string()));
  }
  auto parsed = parse_object(text, path);
  sodium_memzero(text.data(), text.size());
  if (!parsed) return std::move(parsed).error();
  nlohmann::json j = std::move(parsed).value();
  identity id;
  MESH_TRY(id.name, string_field(j, "name", path));
  MESH_TRY(auto pub_hex, string_field(j, "public", path));
  MESH_TRY(id.pub, parse_public(pub_hex, path, "public"));
  MESH_TRY(auto secret_hex, string_field(j, "secret", path));
  if (auto* s = j["secret"].get_ptr<std::string*>()) sodium_memzero(s->data(), s->size());
  auto secret = records::from_hex(secret_hex);
  sodium_memzero(secret_hex.data(), secret_hex.size());
  if (!secret) {
    return make_error(errc::malformed, fmt::format("{}: field \"secret\": {}", path.string(),
                                                   secret.error().message));
  }
  if (secret.value().size() != secret_key_bytes) {
    return make_error(errc::malformed,
                      fmt::format("{}: field \"secret\" is {} bytes, expected {}", path.string(),
                                  secret.value().size(), secret_key_bytes));
  }
  std::copy(secret.value().begin(), secret.value().end(), id.secret.begin());
  sodium_memzero(secret.value().data(), secret.value().size());
  // The secret must be the one for the stated public key, else we would sign records whose
  // writer field names somebody else (they would all fail verification).
  records::public_key derived{};
  crypto_sign_ed25519_sk_to_pk(derived.data(), id.secret.data());
  if (derived != id.pub) {
    sodium_memzero(id.secret.data(), id.secret.size());
    return make_error(
        errc::malformed,
        fmt::format("{}: field \"secret\" does not belong to field \"public\"", path.string()));
  }
  return id;
}

result<void> save_public_key(const std::string& name, const records::public_key& pub,
                             const std::filesystem::path& path, unsigned mode) {
  nlohmann::json j;
  j["name"] = name;
  j["public"] = records::to_hex(pub);
  const std::string text = j.dump(2) + "\n";
  return write_new_file(path, as_bytes(text), mode);
}

result<std::pair<std::string, records::public_key>> load_public_key(
    const std::filesystem::path& path) {
  MESH_TRY(std::string text, read_small_file(path, nullptr));
  const std::string_view body = trim(text);
  if (!body.empty() && body.front() != '{') {
    // A bare hex line.
    MESH_TRY(auto k, parse_public(body, path, "public"));
    return std::pair<std::string, records::public_key>{"", k};
  }
  MESH_TRY(auto j, parse_object(text, path));
  MESH_TRY(auto name, string_field(j, "name", path));
  MESH_TRY(auto hex, string_field(j, "public", path));
  MESH_TRY(auto k, parse_public(hex, path, "public"));
  return std::pair<std::string, records::public_key>{std::move(name), k};
}

result<identity> load_or_create_node_identity(const std::filesystem::path& dir,
                                              const std::string& name) {
  const std::filesystem::path file = dir / "node.key";
  auto loaded = load_identity(file);
  if (!loaded && loaded.error().code == make_error_code(errc::not_found)) {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) {
      if (!std::filesystem::create_directories(dir, ec) && ec) {
        return make_error(
            errc::io, fmt::format("{}: cannot create directory: {}", dir.string(), ec.message()));
      }
      std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::replace, ec);
      if (ec) {
        return make_error(errc::io,
                          fmt::format("{}: cannot chmod 700: {}", dir.string(), ec.message()));
      }
    }
    identity id = generate_identity(name);
    auto saved = save_identity(id, file);
    if (saved) return id;
    // Lost a race with another process creating it: use theirs.
    if (saved.error().code != make_error_code(errc::exists)) return std::move(saved).error();
    loaded = load_identity(file);
  }
  if (!loaded) return std::move(loaded).error();
  if (loaded.value().name != name) {
    return make_error(errc::conflict,
                      fmt::format("{}: key belongs to node \"{}\", not \"{}\" (a renamed node "
                                  "needs a new key: move the file away)",
                                  file.string(), loaded.value().name, name));
  }
  return std::move(loaded).value();
}

void sign(records::record& r, const identity& id) {
  ensure_sodium();
  r.writer = id.pub;
  const std::vector<std::byte> msg = records::signing_bytes(r);
  crypto_sign_detached(r.sig.data(), nullptr, reinterpret_cast<const unsigned char*>(msg.data()),
                       msg.size(), id.secret.data());
}

bool signature_valid(const records::record& r) {
  ensure_sodium();
  const std::vector<std::byte> msg = records::signing_bytes(r);
  return crypto_sign_verify_detached(r.sig.data(),
                                     reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                                     r.writer.data()) == 0;
}

}  // namespace meshdeploy::security

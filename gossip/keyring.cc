#include "gossip/keyring.h"

#include "gossip/errc.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cstdlib>

namespace meshdeploy::gossip {
namespace {

constexpr std::string_view key_id_label = "meshdeploy.gossip.key-id.v1";
constexpr int b64_variant = sodium_base64_VARIANT_ORIGINAL;

// libsodium must be initialised before its RNG is used; sodium_init is
// idempotent and thread-safe. Failing means no usable RNG: nothing is safe.
void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) std::abort();
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view space = " \t\r\n";
  const auto first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(space);
  return s.substr(first, last - first + 1);
}

unsigned hex(key_id id) { return static_cast<unsigned>(id); }

}  // namespace

secret_key secret_key::generate() {
  ensure_sodium();
  secret_key k;
  crypto_aead_xchacha20poly1305_ietf_keygen(reinterpret_cast<unsigned char*>(k.bytes_.data()));
  k.derive_id();
  return k;
}

result<secret_key> secret_key::from_bytes(std::span<const std::byte> raw) {
  if (raw.size() != key_bytes) {
    return make_error(errc::invalid_key,
                      fmt::format("key: {} bytes, want {}", raw.size(), key_bytes));
  }
  ensure_sodium();
  secret_key k;
  std::copy(raw.begin(), raw.end(), k.bytes_.begin());
  k.derive_id();
  return k;
}

result<secret_key> secret_key::from_base64(std::string_view text) {
  ensure_sodium();
  const std::string_view b64 = trim(text);
  if (b64.empty()) return make_error(errc::invalid_key, "key: empty");
  // One byte of slack so a longer input is reported as too long, not as a
  // decoder failure.
  std::array<unsigned char, key_bytes + 1> buf{};
  std::size_t len = 0;
  const char* end = nullptr;
  const int rc = sodium_base642bin(buf.data(), buf.size(), b64.data(), b64.size(), nullptr, &len,
                                   &end, b64_variant);
  result<secret_key> out = make_error(errc::invalid_key, "");
  if (rc != 0 || end != b64.data() + b64.size()) {
    out = make_error(errc::invalid_key,
                     fmt::format("key: not standard padded base64 of {} bytes ({} characters)",
                                 key_bytes, b64.size()));
  } else if (len != key_bytes) {
    out = make_error(errc::invalid_key,
                     fmt::format("key: decodes to {} bytes, want {}", len, key_bytes));
  } else {
    out = from_bytes(std::as_bytes(std::span(buf.data(), key_bytes)));
  }
  sodium_memzero(buf.data(), buf.size());
  return out;
}

secret_key::~secret_key() { sodium_memzero(bytes_.data(), bytes_.size()); }

std::string secret_key::to_base64() const {
  std::array<char, sodium_base64_ENCODED_LEN(key_bytes, b64_variant)> buf{};
  sodium_bin2base64(buf.data(), buf.size(), reinterpret_cast<const unsigned char*>(bytes_.data()),
                    bytes_.size(), b64_variant);
  std::string text(buf.data());
  sodium_memzero(buf.data(), buf.size());
  return text;
}

bool operator==(const secret_key& a, const secret_key& b) {
  return sodium_memcmp(a.bytes_.data(), b.bytes_.data(), key_bytes) == 0;
}

void secret_key::derive_id() {
  std::array<unsigned char, crypto_generichash_BYTES> h{};
  crypto_generichash(
      h.data(), h.size(), reinterpret_cast<const unsigned char*>(key_id_label.data()),
      key_id_label.size(), reinterpret_cast<const unsigned char*>(bytes_.data()), bytes_.size());
  id_ = key_id{h[0]};
  sodium_memzero(h.data(), h.size());
}

std::string keygen() { return secret_key::generate().to_base64(); }

keyring::keyring(secret_key primary) { keys_.push_back(std::move(primary)); }

result<void> keyring::install(const secret_key& k) {
  if (const secret_key* same = find(k.id())) {
    if (*same == k) return ok();  // already installed: idempotent
    return make_error(errc::key_id_collision,
                      fmt::format("install: key id 0x{:02x} is already used by another installed "
                                  "key; generate a different key",
                                  hex(k.id())));
  }
  if (keys_.size() >= max_keys) {
    return make_error(errc::keyring_full,
                      fmt::format("install: keyring holds {} keys already (the limit); remove one "
                                  "first",
                                  keys_.size()));
  }
  keys_.push_back(k);
  return ok();
}

result<void> keyring::use(const secret_key& k) {
  const secret_key* found = find(k.id());
  if (found == nullptr || !(*found == k)) {
    return make_error(errc::key_not_found,
                      fmt::format("use: key with id 0x{:02x} is not installed", hex(k.id())));
  }
  return use(k.id());
}

result<void> keyring::use(key_id id) {
  const auto it =
      std::find_if(keys_.begin(), keys_.end(), [id](const secret_key& k) { return k.id() == id; });
  if (it == keys_.end()) {
    return make_error(errc::key_not_found,
                      fmt::format("use: no installed key has id 0x{:02x}", hex(id)));
  }
  // Move the new primary to the front; the others keep their relative order.
  std::rotate(keys_.begin(), it, it + 1);
  return ok();
}

result<void> keyring::remove(const secret_key& k) {
  const auto it = std::find(keys_.begin(), keys_.end(), k);
  if (it == keys_.end()) {
    return make_error(errc::key_not_found,
                      fmt::format("remove: key with id 0x{:02x} is not installed", hex(k.id())));
  }
  if (it == keys_.begin()) {
    return make_error(errc::primary_key,
                      fmt::format("remove: key 0x{:02x} is the primary key; `use` another key "
                                  "first",
                                  hex(k.id())));
  }
  keys_.erase(it);
  return ok();
}

const secret_key* keyring::find(key_id id) const {
  for (const secret_key& k : keys_) {
    if (k.id() == id) return &k;
  }
  return nullptr;
}

result<keyring> parse_keyring(std::string_view text, std::string_view where) {
  std::vector<secret_key> keys;
  std::vector<std::size_t> lines;  // line number of each entry of keys
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    ++line_no;
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = trim(text.substr(pos, nl - pos));
    pos = nl + 1;
    if (line.empty() || line.front() == '#') continue;

    auto key = secret_key::from_base64(line);
    if (!key) {
      return make_error(errc::keyring_invalid,
                        fmt::format("{}:{}: {}", where, line_no, key.error().message));
    }
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == key.value()) {
        return make_error(errc::keyring_invalid, fmt::format("{}:{}: duplicates the key on line {}",
                                                             where, line_no, lines[i]));
      }
      if (keys[i].id() == key.value().id()) {
        return make_error(errc::keyring_invalid,
                          fmt::format("{}:{}: key id 0x{:02x} collides with the key on line {}; "
                                      "replace one of them with a new key",
                                      where, line_no, hex(keys[i].id()), lines[i]));
      }
    }
    if (keys.size() == max_keys) {
      return make_error(errc::keyring_invalid,
                        fmt::format("{}:{}: more than {} keys", where, line_no, max_keys));
    }
    keys.push_back(std::move(key).value());
    lines.push_back(line_no);
  }
  if (keys.empty()) {
    return make_error(errc::keyring_invalid, fmt::format("{}: no key (want one base64 key per "
                                                         "line, the primary first)",
                                                         where));
  }
  keyring ring(keys.front());
  for (std::size_t i = 1; i < keys.size(); ++i) {
    // Cannot fail: ids were checked distinct and the count bounded above.
    auto installed = ring.install(keys[i]);
    if (!installed) return installed.error();
  }
  return ring;
}

std::string format_keyring(const keyring& ring) {
  std::string text =
      "# meshdeploy gossip keyring: one base64 key per line, the primary first. Secret: mode "
      "0600.\n";
  for (const secret_key& k : ring.list()) {
    std::string b64 = k.to_base64();
    text += b64;
    text += '\n';
    sodium_memzero(b64.data(), b64.size());
  }
  return text;
}

}  // namespace meshdeploy::gossip

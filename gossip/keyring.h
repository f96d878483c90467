// The symmetric cluster keyring that encrypts gossip packets, gossip streams
// and swarm transfers (gossip/packet_crypto.h). docs/security.md describes
// the keys, key ids, the file format and the rotation procedure.
//
// Keys are 32 random bytes (XChaCha20-Poly1305 keys), written as standard
// padded base64 (44 characters) in files and on the command line. Each key has
// a one-byte key id derived from the key itself, which sealed packets carry so
// the receiver knows which key to try. One key is the primary: it seals
// everything this node sends; every installed key opens.
#pragma once

#include "storage/result.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::gossip {

inline constexpr std::size_t key_bytes = 32;
// At most this many keys are installed at once (a rotation needs two).
inline constexpr std::size_t max_keys = 16;

// The one-byte id of a key: the first byte of BLAKE2b-256 keyed with the key
// over the label "meshdeploy.gossip.key-id.v1" (a PRF output, so it reveals
// nothing useful about the key). Two different keys share an id with
// probability 1/256; a keyring refuses to hold two keys with the same id.
enum class key_id : std::uint8_t {};

// One secret key. A value type; every copy wipes its bytes (sodium_memzero)
// when destroyed. Equality is constant-time.
class secret_key {
 public:
  // A fresh random key from the system CSPRNG (libsodium). Never fails.
  static secret_key generate();
  // A copy of `raw`. Errors: invalid_key unless raw.size() == key_bytes.
  static result<secret_key> from_bytes(std::span<const std::byte> raw);
  // Parses standard padded base64 of exactly key_bytes bytes; surrounding
  // spaces, tabs, CR and LF are ignored. Errors: invalid_key (the message says
  // why but never echoes the text, which may be a mistyped secret).
  static result<secret_key> from_base64(std::string_view text);

  secret_key(const secret_key& other) = default;
  secret_key& operator=(const secret_key& other) = default;
  ~secret_key();

  // Standard padded base64 (44 characters). The caller owns the secret text.
  [[nodiscard]] std::string to_base64() const;
  [[nodiscard]] key_id id() const { return id_; }
  [[nodiscard]] std::span<const std::byte, key_bytes> bytes() const { return bytes_; }

  friend bool operator==(const secret_key& a, const secret_key& b);

 private:
  secret_key() = default;
  void derive_id();

  std::array<std::byte, key_bytes> bytes_{};
  key_id id_{};
};

// Returns a new random key as base64 (`meshdeploy keygen`).
std::string keygen();

// The keys of one node: 1..max_keys keys with distinct key ids, one of them
// the primary. A value type (copies copy the secrets, which are wiped when
// each copy dies).
//
// Threading: none inside; the node executor owns the keyring and replaces or
// mutates it between packets.
class keyring {
 public:
  // A keyring holding only `primary`.
  explicit keyring(secret_key primary);

  // Adds `k` (not as primary). Installing a key that is already installed is
  // a no-op success, so a cluster-wide install can be retried. Errors:
  // key_id_collision (another installed key has k's id: generate another key),
  // keyring_full (max_keys installed).
  result<void> install(const secret_key& k);

  // Makes the installed key `k` (or the installed key with id `id`) the
  // primary. Errors: key_not_found.
  result<void> use(const secret_key& k);
  result<void> use(key_id id);

  // Removes the installed key `k`. Errors: primary_key (it is the primary:
  // `use` another one first), key_not_found.
  result<void> remove(const secret_key& k);

  // The installed keys, primary first, then in installation order.
  [[nodiscard]] std::span<const secret_key> list() const { return keys_; }
  [[nodiscard]] const secret_key& primary() const { return keys_.front(); }
  // The installed key with id `id`, or nullptr.
  [[nodiscard]] const secret_key* find(key_id id) const;
  [[nodiscard]] std::size_t size() const { return keys_.size(); }

 private:
  // Invariant: 1 <= size <= max_keys, ids distinct, keys_[0] is the primary.
  std::vector<secret_key> keys_;
};

// Parses a keyring file: one base64 key per line, the primary first. Blank
// lines and lines starting with '#' are ignored. `where` (usually the path)
// prefixes every message, e.g. "keyring.txt:3: not base64 of a 32-byte key".
// Errors: keyring_invalid (no key, a bad key, a duplicate key, two keys with
// the same id, more than max_keys keys; each names its line).
result<keyring> parse_keyring(std::string_view text, std::string_view where);

// The file text of `ring` in the format parse_keyring reads, primary first.
// The text is secret: the caller writes it with mode 0600 and atomically
// (temp file + rename), and should wipe it after use.
std::string format_keyring(const keyring& ring);

}  // namespace meshdeploy::gossip

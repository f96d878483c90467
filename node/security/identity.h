// Ed25519 identities (the cluster admin, operators, nodes) and record signing
// (DESIGN §8, docs/records.md "Keys").
//
// Key files are JSON:
//   secret (<name>.key, node.key):  {"name": "...", "public": "<64 hex>", "secret": "<128 hex>"}
//   public (<name>.pub):            {"name": "...", "public": "<64 hex>"}
// A public key file may also be one bare line of 64 hex digits.
// Secret files are created with mode 0600 and O_EXCL (never overwritten) and
// are refused on load when group or others may read them.
//
// Threading: every function is reentrant; none keeps state except libsodium's
// one-time initialisation.
#pragma once

#include "node/records/record.h"
#include "storage/result.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

namespace meshdeploy::security {

inline constexpr std::size_t secret_key_bytes = 64;  // libsodium's seed || public key form

struct identity {
  std::string name;  // display name ("admin", the operator's or the node's name)
  records::public_key pub{};
  std::array<std::uint8_t, secret_key_bytes> secret{};
};

// A fresh Ed25519 key pair (crypto_sign_keypair) named `name`. Never fails
// (aborts if libsodium cannot initialise, which means no usable RNG).
identity generate_identity(std::string name);

// Writes `id` to `path` as a secret key file, mode 0600, flushed with fsync.
// Errors (records::errc): exists (the file is already there: it is never
// overwritten), io (names the path and the system error; a partly written file
// is removed).
result<void> save_identity(const identity& id, const std::filesystem::path& path);

// Reads a secret key file. Errors: not_found (no file), io (unreadable),
// permission_denied (group/world permission bits set: the message says
// "chmod 600 <path>"), malformed (not JSON, a missing or non-string field, bad
// hex, wrong length, or a secret that does not belong to the public key; the
// message names the file and the field).
result<identity> load_identity(const std::filesystem::path& path);

// Writes a public key file {"name","public"} with `mode` (O_EXCL, never
// overwrites). Errors: exists, io.
result<void> save_public_key(const std::string& name, const records::public_key& pub,
                             const std::filesystem::path& path, unsigned mode = 0644);

// Reads a public key file: the JSON form, or one line of 64 hex digits (the
// name is then ""). Errors: not_found, io, malformed (names the file).
result<std::pair<std::string, records::public_key>> load_public_key(
    const std::filesystem::path& path);

// The node's own identity in `dir`/node.key: loaded if present, otherwise
// generated and saved (creating `dir` with mode 0700 if needed). Errors: those
// of load_identity/save_identity; conflict when the file holds a key saved for
// another node name (renaming a node needs a new key: its name is bound to the
// key by a host record).
result<identity> load_or_create_node_identity(const std::filesystem::path& dir,
                                              const std::string& name);

// Creates `path` with `mode` (O_EXCL|O_NOFOLLOW: never overwrites or follows a
// symlink), writes `bytes` and fsyncs. The key writers use it; cluster_init
// writes the keyring and grant file with it. Errors: exists, io (names the path;
// a partly written file is removed).
result<void> write_new_file(const std::filesystem::path& path, std::span<const std::byte> bytes,
                            unsigned mode);

// Signs `r` with `id`: sets r.writer = id.pub, then r.sig = Ed25519 over
// records::signing_bytes(r). Everything else in `r` must be final.
void sign(records::record& r, const identity& id);

// True when r.sig is a valid Ed25519 signature by r.writer over signing_bytes(r).
bool signature_valid(const records::record& r);

}  // namespace meshdeploy::security

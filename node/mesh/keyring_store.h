// The node's live gossip keyring on disk: <data-dir>/keyring.json, written
// atomically with mode 0600 after every key operation, so a restart keeps
// rotated keys (docs/security.md "Key rotation").
//
// File format (JSON):
//   {"format": 1, "generation": G, "keys": ["<base64>", ...], "removed": ["<fingerprint>", ...]}
// keys: primary first. generation: raised by every cluster key operation
// (install, use, remove); a keyring sync from a peer is applied only when its
// generation is higher. removed: fingerprints of keys removed cluster-wide,
// so an old --keyring file cannot bring them back.
//
// Combining with --keyring at start: if the file exists it wins (its primary
// stays the primary); keys from --keyring that it lacks are added as
// secondary keys unless they were removed (listed in "removed") or clash by
// key id. Without the file, the --keyring keyring is used as is.
#pragma once

#include "gossip/keyring.h"
#include "storage/result.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace meshdeploy::mesh {

struct keyring_state {
  gossip::keyring ring;
  std::uint64_t generation = 0;
  std::vector<std::string> removed;  // fingerprints (key_fingerprint) of removed keys
};

// A public name for a key: 16 hex digits of BLAKE2b-128 keyed by nothing over
// "meshdeploy.key-fingerprint.v1" || key. Reveals nothing useful about the key.
std::string key_fingerprint(const gossip::secret_key& k);

// Two hex digits of the key id.
std::string key_id_hex(const gossip::secret_key& k);

// Writes `s` to `path` atomically (temp file in the same directory, fsync,
// rename) with mode 0600. Errors (deploy::errc::internal) name the path.
result<void> save_keyring_state(const std::filesystem::path& path, const keyring_state& s);

// Reads a file written by save_keyring_state. Errors: gossip::errc::keyring_invalid naming the
// path and what is wrong (not JSON, no keys, a bad key).
result<keyring_state> load_keyring_state(const std::filesystem::path& path);

// The keyring a node starts with, per the rule above. `persisted` is the
// keyring.json path (it need not exist). Errors: the file exists but is invalid.
result<keyring_state> combine_keyrings(const std::filesystem::path& persisted,
                                       const gossip::keyring& from_flag);

}  // namespace meshdeploy::mesh

// `meshdeploy cluster init`: the first set of keys of a new cluster (DESIGN §8,
// docs/records.md "Keys"), and grant construction for the admin tooling.
//
// Threading: pure functions plus file creation; no shared state.
#pragma once

#include "node/records/record.h"
#include "node/security/identity.h"
#include "storage/result.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace meshdeploy::security {

// The files init_cluster writes, all mode 0600, inside one directory.
struct cluster_files {
  std::filesystem::path keyring;       // keyring.txt: the gossip keyring (one base64 key per
                                       // line, gossip/keyring.h), for every node's --keyring
  std::filesystem::path admin_key;     // admin.key: the cluster admin identity (keep offline)
  std::filesystem::path admin_pub;     // admin.pub: every node's trusted admin key
  std::filesystem::path operator_key;  // <operator>.key: the first operator's identity
  std::filesystem::path operator_pub;  // <operator>.pub
  std::filesystem::path grant;         // <operator>.grant: records::encode() of the admin-signed
                                       // grant, version 1, allow {"*:*"}
};

// The paths init_cluster would use in `dir` for `operator_name`.
cluster_files cluster_file_paths(const std::filesystem::path& dir,
                                 const std::string& operator_name);

// Creates `dir` (mode 0700) if missing and writes the files above with fresh keys. Refuses,
// writing nothing, if any of the files already exists (errc::exists naming it). If a later
// write fails, the files already written by this call are removed again.
// Errors (records::errc): schema (operator_name is not 1..128 of [A-Za-z0-9._-], starts with
// '.', or is "admin"), exists, io.
result<cluster_files> init_cluster(const std::filesystem::path& dir,
                                   const std::string& operator_name);

// A grant record signed by `admin` giving the operator `op_name` with key `op` the patterns
// `allow` (or revoking it): type grant, key to_hex(op), `version`, time_ms = now_ms, via "".
// Errors: schema (a pattern fails validate_pattern, version 0, or the payload would not pass
// decode_payload: bad operator name, more than 256 patterns).
result<records::record> make_grant(const identity& admin, const std::string& op_name,
                                   const records::public_key& op, std::vector<std::string> allow,
                                   bool revoked, std::uint64_t version, std::int64_t now_ms);

}  // namespace meshdeploy::security

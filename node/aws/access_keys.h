// AWS access keys: the table that maps an access key id to its secret and to the operator
// identity that acts for it (docs/aws-compatibility.md "Access keys").
//
// An access key is its own operator identity: `meshdeploy access-key create --operator NAME`
// makes a fresh Ed25519 key named NAME, has the admin sign a grant for it (the patterns the key
// may use), and writes the key file and a credentials file entry. A node that serves the AWS
// API loads the credentials file (--aws-credentials FILE, mode 0600). It checks each request's
// SigV4 signature with the entry's secret, then signs the records the request implies with the
// entry's identity, so every node verifies them under that identity's grant like any operator
// record; revoking the grant revokes the key. The secret never leaves the credentials file.
//
// File format (JSON):
//   {"accessKeys": [{"accessKeyId": "MDAK...", "secretAccessKey": "...",
//                    "operator": "alice", "identityFile": "alice-MDAK....key"}]}
// identityFile is a secret key file (node/security/identity.h), relative to the credentials
// file's folder unless absolute.
//
// Threading: immutable after load; every method may be called from any thread.
#pragma once

#include "node/security/identity.h"
#include "storage/result.h"

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace meshdeploy::aws {

struct access_key {
  std::string id;
  std::string secret;
  std::string operator_name;
  security::identity identity;
};

class access_keys {
 public:
  access_keys() = default;
  // Reads a credentials file. Errors (records::errc): not_found, io, permission_denied (group or
  // others may read it), malformed (names the file, the entry and the field), and those of
  // security::load_identity for each identity file.
  static result<access_keys> load(const std::filesystem::path& file);

  // nullptr when the id is unknown.
  const access_key* find(const std::string& id) const;
  bool empty() const { return keys_.empty(); }
  void add(access_key k);

 private:
  std::map<std::string, access_key> keys_;
};

// A new access key id: "MDAK" and 16 characters of [A-Z2-7] (20 characters, as AWS's).
std::string new_access_key_id();
// A new secret access key: 40 characters of [A-Za-z0-9+/] (30 random bytes, base64).
std::string new_secret_access_key();

}  // namespace meshdeploy::aws

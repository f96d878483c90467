// Helpers shared by the tests of node/aws: requests signed as the aws CLI signs them.
#pragma once

#include "node/api/router.h"
#include "node/aws/sigv4.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <string>
#include <vector>

namespace meshdeploy::aws::sigtest {

inline std::string amz_date(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Signs `r` (its headers must include Host) for `service` as of `now_ms`, adding X-Amz-Date,
// X-Amz-Content-Sha256 (S3) and Authorization.
inline void sign_request(api::api_request& r, const std::string& key_id, const std::string& secret,
                         const std::string& service, std::int64_t now_ms) {
  const std::string date = amz_date(now_ms);
  r.headers.emplace_back("X-Amz-Date", date);
  const std::string hash = sha256_hex(r.body);
  if (service == "s3") r.headers.emplace_back("x-amz-content-sha256", hash);
  std::vector<std::string> names;
  for (const auto& [n, v] : r.headers) {
    std::string l;
    for (char c : n) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    names.push_back(l);
  }
  std::sort(names.begin(), names.end());
  const credential_scope scope{key_id, date.substr(0, 8), "us-east-1", service};
  r.headers.emplace_back("Authorization",
                         sign(secret, scope, date, r.method, r.target, r.headers, names, hash,
                              service == "s3" ? uri_style::s3 : uri_style::normalized));
}

}  // namespace meshdeploy::aws::sigtest

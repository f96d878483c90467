// AWS Signature Version 4 (header-based "AWS4-HMAC-SHA256"), verification side, as pure
// functions: the node recomputes the signature an AWS client (the aws CLI, Terraform, an SDK)
// put in the Authorization header and compares it with the one the client sent. No I/O and no
// clock: the caller passes the time and a lookup of secrets. Reference: AWS's "Signature Version
// 4 signing process" and its published test suite (tests/unit/node/aws/sigv4_test.cc).
//
// Supported payload modes (X-Amz-Content-Sha256): absent (the body is hashed), a hex SHA-256 of
// the body (checked), and UNSIGNED-PAYLOAD. STREAMING-AWS4-HMAC-SHA256-PAYLOAD (aws-chunked) is
// refused with errc::unsupported_payload: the aws CLI only uses it over HTTPS, never over the
// plain-HTTP endpoints the node serves. Query-string (presigned URL) authentication is not
// supported (MissingAuthenticationToken).
//
// Thread safety: every function is pure and may be called from any thread.
#pragma once

#include "node/api/headers.h"
#include "node/aws/errc.h"
#include "storage/result.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshdeploy::aws {

// Header fields as received, in order; a name may repeat.
using api::find_header;
using api::header_list;

// How the canonical URI is formed: every AWS service but S3 percent-encodes the (normalized)
// path as sent once more; S3 uses the path as the client encoded it (decoded, then encoded once).
enum class uri_style { normalized, s3 };

struct credential_scope {
  std::string access_key_id;
  std::string date;     // YYYYMMDD
  std::string region;   // e.g. us-east-1
  std::string service;  // e.g. codedeploy, s3
  // "DATE/REGION/SERVICE/aws4_request"
  std::string to_string() const;
};

// The parsed "AWS4-HMAC-SHA256 Credential=.../..., SignedHeaders=a;b, Signature=hex" header.
struct authorization {
  credential_scope scope;
  std::vector<std::string> signed_headers;  // lower case, as listed (must be sorted)
  std::string signature;                    // 64 lower-case hex digits
};
// Errors: incomplete_signature naming the part that is missing or malformed.
result<authorization> parse_authorization(std::string_view header);

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);
using mac = std::array<std::uint8_t, 32>;
mac hmac_sha256(std::string_view key, std::string_view message);
std::string to_hex(const mac& m);

// RFC 3986 percent-encoding as SigV4 wants it: every byte but A-Z a-z 0-9 - . _ ~ becomes %XX
// (upper-case hex); '/' is kept when `keep_slash`.
std::string uri_encode(std::string_view s, bool keep_slash);

// The canonical request of AWS's step 1. `target` is the request target as on the wire (path
// and query); `payload_hash` is the value the client signed (hex SHA-256 or UNSIGNED-PAYLOAD).
// Every name in `signed_headers` must be in `headers` (case-insensitive); the caller checks.
std::string canonical_request(std::string_view method, std::string_view target,
                              const header_list& headers,
                              const std::vector<std::string>& signed_headers,
                              std::string_view payload_hash, uri_style style);
// Step 2: "AWS4-HMAC-SHA256\n" amz_date "\n" scope "\n" hex(SHA-256(canonical)).
std::string string_to_sign(std::string_view amz_date, const credential_scope& scope,
                           std::string_view canonical);
// Step 3: kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service), "aws4_request").
mac signing_key(std::string_view secret, const credential_scope& scope);
// hex(HMAC(signing_key, string_to_sign)).
std::string signature(std::string_view secret, const credential_scope& scope,
                      std::string_view string_to_sign);

// Parses "YYYYMMDDTHHMMSSZ" to seconds since the epoch (UTC). nullopt when malformed.
std::optional<std::int64_t> parse_amz_date(std::string_view s);

struct request_view {
  std::string_view method;
  std::string_view target;  // path and query as on the wire
  const header_list& headers;
  std::string_view body;  // the whole body, for the payload hash
};

struct verify_options {
  uri_style style = uri_style::normalized;
  std::string_view service;  // the scope's service must be this ("codedeploy", "s3")
  std::chrono::seconds max_skew{15 * 60};
};

struct verified_request {
  std::string access_key_id;
  std::string region;
};

// Returns the secret of an access key id, or nullopt when no such key is active.
using secret_lookup = std::function<std::optional<std::string>(const std::string& access_key_id)>;

// Verifies the request's Authorization header against the secret `lookup` gives for its access
// key, at time `now_s` (seconds since the epoch). Errors (errc): missing_authentication (no
// Authorization header), incomplete_signature (malformed header, no X-Amz-Date, Host unsigned,
// a signed header absent, scope date not the request date, wrong service),
// request_time_skewed, unknown_access_key, content_sha256_mismatch, unsupported_payload,
// invalid_signature. Messages follow AWS's wording where AWS has one.
result<verified_request> verify(const request_view& req, const secret_lookup& lookup,
                                std::int64_t now_s, const verify_options& options);

// Signs a request as a client would (used by tests and by nothing on the node's path): returns
// the Authorization header value for the given scope, time and signed header names.
std::string sign(std::string_view secret, const credential_scope& scope, std::string_view amz_date,
                 std::string_view method, std::string_view target, const header_list& headers,
                 const std::vector<std::string>& signed_headers, std::string_view payload_hash,
                 uri_style style);

}  // namespace meshdeploy::aws

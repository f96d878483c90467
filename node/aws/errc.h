// Error codes of node/aws (the CodeDeploy JSON 1.1 and S3 front ends, docs/aws-compatibility.md).
// Each maps to the error code string and HTTP status AWS itself answers with (aws_error_shape).
#pragma once

#include <boost/system/error_code.hpp>

#include <string_view>
#include <type_traits>

namespace meshdeploy::aws {

enum class errc : int {
  ok = 0,
  missing_authentication = 1,   // no Authorization header (MissingAuthenticationToken)
  incomplete_signature = 2,     // Authorization or X-Amz-Date malformed, unsigned Host, ...
  invalid_signature = 3,        // the signature does not match (wrong secret, altered request)
  unknown_access_key = 4,       // the access key id names no active key
  request_time_skewed = 5,      // X-Amz-Date more than 15 minutes from the node's clock
  content_sha256_mismatch = 6,  // X-Amz-Content-Sha256 is not the body's hash
  unsupported_payload = 7,      // a payload signing mode this node does not implement
  access_denied = 8,            // the operator's grant does not allow the operation
};

const boost::system::error_category& aws_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), aws_category()};
}

// Which protocol's names an error is reported with: CodeDeploy's JSON 1.1 or S3's REST-XML.
enum class api_flavour { json, s3 };

struct aws_error_shape {
  unsigned status;
  std::string_view code;  // "__type" in JSON 1.1, <Code> in S3
};
// The status and code AWS answers `e` with in `flavour`.
aws_error_shape error_shape(errc e, api_flavour flavour);

}  // namespace meshdeploy::aws

namespace boost::system {
template <>
struct is_error_code_enum<meshdeploy::aws::errc> : std::true_type {};
}  // namespace boost::system

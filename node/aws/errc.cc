#include "node/aws/errc.h"

#include <string>

namespace meshdeploy::aws {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "meshdeploy.aws"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "success";
      case errc::missing_authentication:
        return "missing authentication";
      case errc::incomplete_signature:
        return "incomplete signature";
      case errc::invalid_signature:
        return "signature does not match";
      case errc::unknown_access_key:
        return "unknown access key";
      case errc::request_time_skewed:
        return "request time too skewed";
      case errc::content_sha256_mismatch:
        return "payload hash mismatch";
      case errc::unsupported_payload:
        return "unsupported payload signing";
      case errc::access_denied:
        return "access denied";
    }
    return "unknown aws error " + std::to_string(ev);
  }
};

}  // namespace

const boost::system::error_category& aws_category() noexcept {
  static const category instance;
  return instance;
}

aws_error_shape error_shape(errc e, api_flavour flavour) {
  const bool s3 = flavour == api_flavour::s3;
  switch (e) {
    case errc::ok:
      break;
    case errc::missing_authentication:
      return s3 ? aws_error_shape{403, "AccessDenied"}
                : aws_error_shape{403, "MissingAuthenticationTokenException"};
    case errc::incomplete_signature:
      return s3 ? aws_error_shape{400, "AuthorizationHeaderMalformed"}
                : aws_error_shape{400, "IncompleteSignatureException"};
    case errc::invalid_signature:
      return s3 ? aws_error_shape{403, "SignatureDoesNotMatch"}
                : aws_error_shape{403, "InvalidSignatureException"};
    case errc::unknown_access_key:
      return s3 ? aws_error_shape{403, "InvalidAccessKeyId"}
                : aws_error_shape{403, "UnrecognizedClientException"};
    case errc::request_time_skewed:
      return s3 ? aws_error_shape{403, "RequestTimeTooSkewed"}
                : aws_error_shape{400, "InvalidSignatureException"};
    case errc::content_sha256_mismatch:
      return s3 ? aws_error_shape{400, "XAmzContentSHA256Mismatch"}
                : aws_error_shape{400, "InvalidSignatureException"};
    case errc::unsupported_payload:
      return s3 ? aws_error_shape{501, "NotImplemented"}
                : aws_error_shape{400, "InvalidSignatureException"};
    case errc::access_denied:
      return s3 ? aws_error_shape{403, "AccessDenied"}
                : aws_error_shape{400, "AccessDeniedException"};
  }
  return {500, s3 ? "InternalError" : "InternalFailure"};
}

}  // namespace meshdeploy::aws

// Percent decoding of URL parts, shared by the native API (request_parsing.cc, where it is
// defined), SigV4's canonical request and the S3 front end (node/aws/).
#pragma once

#include <string>
#include <string_view>

namespace meshdeploy::api {

// Decodes %XX escapes (either case of hex digit); a '%' not followed by two hex digits stays as
// it is. With `plus_is_space`, '+' becomes ' ' (form-style query strings).
std::string percent_decode(std::string_view s, bool plus_is_space);

}  // namespace meshdeploy::api

// The AWS JSON 1.1 protocol's envelope (CodeDeploy's): responses with Content-Type
// application/x-amz-json-1.1 and an x-amzn-RequestId header, errors as
// {"__type": "ApplicationDoesNotExistException", "message": "..."}, and typed reads of request
// fields that answer ValidationException naming the field.
//
// Threading: pure functions.
#pragma once

#include "node/api/router.h"
#include "node/aws/errc.h"
#include "storage/result.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::aws {

inline constexpr std::string_view json_content_type = "application/x-amz-json-1.1";

// An AWS error to answer with: HTTP status, __type and message.
struct api_error {
  unsigned status = 400;
  std::string type;
  std::string message;
};

api::api_response json_ok(const nlohmann::json& body);
api::api_response json_error(const api_error& e);
// The shape of a SigV4 or grant failure (node/aws/errc.h) in JSON 1.1.
api_error auth_error(const error& e);

inline api_error validation(std::string message) {
  return {400, "ValidationException", std::move(message)};
}

template <class T>
using api_result = outcome::basic_result<T, api_error, outcome::policy::terminate>;

// Field readers over a request object. A required field that is absent, or any field of the
// wrong type or out of bounds, is a ValidationException naming the field.
api_result<std::string> get_string(const nlohmann::json& j, const char* field, bool required,
                                   std::size_t max_len = 1024);
api_result<std::optional<bool>> get_bool(const nlohmann::json& j, const char* field);
api_result<std::optional<std::int64_t>> get_int(const nlohmann::json& j, const char* field,
                                                std::int64_t min, std::int64_t max);
api_result<std::vector<std::string>> get_strings(const nlohmann::json& j, const char* field,
                                                 bool required, std::size_t max_items);
// An object member; nullptr when absent or null, ValidationException when not an object.
api_result<const nlohmann::json*> get_object(const nlohmann::json& j, const char* field);
api_result<const nlohmann::json*> get_array(const nlohmann::json& j, const char* field,
                                            std::size_t max_items);

// Milliseconds since the epoch as AWS JSON's timestamp: seconds, with a fraction.
double epoch_seconds(std::int64_t ms);

}  // namespace meshdeploy::aws

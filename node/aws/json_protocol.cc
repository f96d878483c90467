#include "node/aws/json_protocol.h"

#include <fmt/format.h>
#include <sodium.h>

namespace meshdeploy::aws {

using nlohmann::json;

namespace {

std::string request_id() {
  unsigned char b[16];
  randombytes_buf(b, sizeof b);
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += fmt::format("{:02x}", b[i]);
  }
  return s;
}

api::api_response with_envelope(unsigned status, std::string body) {
  api::api_response r;
  r.status = status;
  r.content_type = std::string(json_content_type);
  r.body = std::move(body);
  r.headers.emplace_back("x-amzn-RequestId", request_id());
  return r;
}

}  // namespace

api::api_response json_ok(const json& body) { return with_envelope(200, body.dump()); }

api::api_response json_error(const api_error& e) {
  auto r = with_envelope(e.status, json{{"__type", e.type}, {"message", e.message}}.dump());
  r.headers.emplace_back("x-amzn-ErrorType", e.type);
  return r;
}

api_error auth_error(const error& e) {
  if (e.code.category() == aws_category()) {
    const auto shape = error_shape(static_cast<errc>(e.code.value()), api_flavour::json);
    return {shape.status, std::string(shape.code), e.message};
  }
  return {500, "InternalFailure", e.message};
}

api_result<std::string> get_string(const json& j, const char* field, bool required,
                                   std::size_t max_len) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (required) return validation(fmt::format("{} is required", field));
    return std::string();
  }
  if (!it->is_string()) return validation(fmt::format("{} must be a string", field));
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max_len) {
    return validation(fmt::format("{} is longer than {} characters", field, max_len));
  }
  if (required && s.empty()) return validation(fmt::format("{} must not be empty", field));
  return s;
}

api_result<std::optional<bool>> get_bool(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return validation(fmt::format("{} must be a boolean", field));
  return std::optional<bool>(it->get<bool>());
}

api_result<std::optional<std::int64_t>> get_int(const json& j, const char* field, std::int64_t min,
                                                std::int64_t max) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::optional<std::int64_t>();
  if (!it->is_number_integer()) return validation(fmt::format("{} must be an integer", field));
  const auto v = it->get<std::int64_t>();
  if (v < min || v > max) {
    return validation(fmt::format("{} must be between {} and {}", field, min, max));
  }
  return std::optional<std::int64_t>(v);
}

api_result<std::vector<std::string>> get_strings(const json& j, const char* field, bool required,
                                                 std::size_t max_items) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (required) return validation(fmt::format("{} is required", field));
    return std::vector<std::string>();
  }
  if (!it->is_array()) return validation(fmt::format("{} must be a list of strings", field));
  if (it->size() > max_items) {
    return validation(fmt::format("{} has more than {} items", field, max_items));
  }
  std::vector<std::string> out;
  for (const auto& e : *it) {
    if (!e.is_string() || e.get_ref<const std::string&>().size() > 1024) {
      return validation(fmt::format("{} must be a list of strings", field));
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

api_result<const json*> get_object(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return static_cast<const json*>(nullptr);
  if (!it->is_object()) return validation(fmt::format("{} must be an object", field));
  return &*it;
}

api_result<const json*> get_array(const json& j, const char* field, std::size_t max_items) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return static_cast<const json*>(nullptr);
  if (!it->is_array()) return validation(fmt::format("{} must be a list", field));
  if (it->size() > max_items) {
    return validation(fmt::format("{} has more than {} items", field, max_items));
  }
  return &*it;
}

double epoch_seconds(std::int64_t ms) { return static_cast<double>(ms) / 1000.0; }

}  // namespace meshdeploy::aws

// A small blocking HTTP/1.1 client for the node API (Boost.Beast), with a
// deadline on every call. Used only by the CLI.
#pragma once

#include "storage/result.h"

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshdeploy::cli {

struct http_reply {
  unsigned status = 0;
  std::string content_type;
  std::string body;
  // Every header field but Content-Type, as received (name, value).
  std::vector<std::pair<std::string, std::string>> headers;
  // The value of header field `name` (case-insensitive); "" when absent.
  std::string header(std::string_view name) const;
};

enum class client_errc { ok = 0, unreachable = 1, protocol = 2 };

class client {
 public:
  // `api` is HOST:PORT of a node.
  explicit client(std::string api) : api_(std::move(api)) {}

  // Sends a request with an optional JSON body. Errors: client_errc::unreachable
  // (cannot connect, names the address and what to do), protocol (bad reply).
  result<http_reply> call(const std::string& method, const std::string& target,
                          const std::string& json_body = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  // Streams a file as the request body (bundle uploads).
  result<http_reply> upload(const std::string& target, const std::filesystem::path& file,
                            std::chrono::milliseconds timeout = std::chrono::minutes(30)) const;

  const std::string& api() const { return api_; }

 private:
  std::string api_;
};

const boost::system::error_category& client_category() noexcept;
inline boost::system::error_code make_error_code(client_errc e) noexcept {
  return {static_cast<int>(e), client_category()};
}

}  // namespace meshdeploy::cli

namespace boost::system {
template <>
struct is_error_code_enum<meshdeploy::cli::client_errc> : std::true_type {};
}  // namespace boost::system

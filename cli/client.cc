#include "cli/client.h"

#include "node/api/server.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

namespace meshdeploy::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "meshdeploy.cli"; }
  std::string message(int ev) const override {
    switch (static_cast<client_errc>(ev)) {
      case client_errc::ok:
        return "success";
      case client_errc::unreachable:
        return "node unreachable";
      case client_errc::protocol:
        return "bad reply";
    }
    return "unknown";
  }
};

// Runs one request/response exchange with a deadline covering all of it.
template <class Body>
result<http_reply> exchange(const std::string& api, http::request<Body>& req,
                            std::chrono::milliseconds timeout) {
  auto ep = api::parse_endpoint(api);
  if (!ep) {
    return make_error(
        client_errc::unreachable,
        fmt::format("{} (set --api HOST:PORT or MESHDEPLOY_API)", ep.error().message));
  }
  asio::io_context io;
  beast::tcp_stream stream(io);
  error_code ec;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256ull << 20);
  beast::flat_buffer buffer;
  bool connected = false;
  stream.expires_after(timeout);
  stream.async_connect(ep.value(), [&](error_code e) {
    if (e) {
      ec = e;
      return;
    }
    connected = true;
    http::async_write(stream, req, [&](error_code e2, std::size_t) {
      if (e2) {
        ec = e2;
        return;
      }
      http::async_read(stream, buffer, parser, [&](error_code e3, std::size_t) { ec = e3; });
    });
  });
  io.run();
  if (!connected) {
    return make_error(
        client_errc::unreachable,
        fmt::format("no meshdeploy node reachable at {}: {} (is `meshdeploy node run` "
                    "running? set --api HOST:PORT or MESHDEPLOY_API)",
                    api, ec ? ec.message() : "timed out"));
  }
  if (ec) {
    return make_error(client_errc::protocol,
                      fmt::format("request to {} failed: {}", api,
                                  ec == beast::error::timeout ? "timed out" : ec.message()));
  }
  error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  auto& res = parser.get();
  http_reply reply{static_cast<unsigned>(res.result_int()),
                   std::string(res[http::field::content_type]),
                   std::move(res.body()),
                   {}};
  for (const auto& field : res) {
    if (field.name() == http::field::content_type) continue;
    reply.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return reply;
}

}  // namespace

std::string http_reply::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (beast::iequals(beast::string_view(n.data(), n.size()),
                       beast::string_view(name.data(), name.size())))
      return v;
  }
  return {};
}

const boost::system::error_category& client_category() noexcept {
  static const category instance;
  return instance;
}

result<http_reply> client::call(const std::string& method, const std::string& target,
                                const std::string& json_body,
                                std::chrono::milliseconds timeout) const {
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, api_);
  req.set(http::field::user_agent, "meshdeploy-cli");
  req.keep_alive(false);
  if (!json_body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = json_body;
  }
  req.prepare_payload();
  return exchange(api_, req, timeout);
}

result<http_reply> client::upload(const std::string& target, const std::filesystem::path& file,
                                  std::chrono::milliseconds timeout) const {
  http::request<http::file_body> req{http::verb::post, target, 11};
  req.set(http::field::host, api_);
  req.set(http::field::user_agent, "meshdeploy-cli");
  req.set(http::field::content_type, "application/octet-stream");
  req.keep_alive(false);
  error_code ec;
  req.body().open(file.c_str(), beast::file_mode::scan, ec);
  if (ec) {
    return make_error(client_errc::protocol,
                      fmt::format("cannot read {}: {}", file.string(), ec.message()));
  }
  req.prepare_payload();
  return exchange(api_, req, timeout);
}

}  // namespace meshdeploy::cli

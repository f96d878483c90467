// libFuzzer target for the HTTP API's request parsing: raw bytes from a client go through the
// same steps as api::server's session (node/api/server.cc): Beast's header parser with the
// server's limits, then the body parser (JSON bodies limited to server_options'
// max_body_bytes), then the router's helpers every route uses: parse_target, path_segments,
// parse_body and str_field, and router::is_upload. Nothing may crash, hang or leak, and what
// they return must keep their contracts (checked here; a violation aborts).
//
// Not covered: router::handle on a real registry (it needs a clang build of the node's
// libraries, RocksDB included, which the short CI fuzz run cannot afford).
//
// Built by the clang fuzz build (MESHDEPLOY_FUZZ); by hand:
//   clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -I. -include utility
//     tests/fuzz/http_request_fuzz.cc node/api/request_parsing.cc node/deploy/errc.cc -lfmt
#include "node/api/host_check.h"
#include "node/api/router.h"
#include "node/api/server.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string_view>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace meshdeploy::api;

void require(bool condition) {
  if (!condition) std::abort();
}

// Feeds `rest` to `parser` until `enough(parser)` or an error; consumes what was parsed.
// False on a parse error or when the bytes end first (the server would wait for more).
template <class Parser, class Enough>
bool feed(Parser& parser, std::string_view& rest, Enough enough) {
  for (int rounds = 0; rounds < 100000 && !enough(parser); ++rounds) {
    if (rest.empty()) return false;
    beast::error_code ec;
    const std::size_t used = parser.put(asio::buffer(rest.data(), rest.size()), ec);
    require(used <= rest.size());
    rest.remove_prefix(used);
    if (ec == http::error::need_more) {
      if (used == 0) return false;  // a partial element at the end: no more bytes come
      continue;
    }
    if (ec) return false;
  }
  return enough(parser);
}

void check_helpers(const api_request& req) {
  const parsed_target t = parse_target(req.target);
  require(t.path.find('?') == std::string::npos);
  require(req.target.starts_with(t.path));
  for (const auto& segment : path_segments(t.path)) require(!segment.empty());
  (void)router::is_upload(req.method, req.target);
  auto body = parse_body(req);
  if (!body) {
    require(!body.error().message.empty());
    return;
  }
  require(body.value().is_object());
  for (const char* key : {"application", "group", "revision", "name", "reason"}) {
    auto field = str_field(body.value(), key, true);
    require(field.has_value() || !field.error().message.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const server_options limits;
  // Several requests on one connection (keep-alive), as the session loop reads them.
  for (int requests = 0; requests < 16 && !rest.empty(); ++requests) {
    http::request_parser<http::empty_body> header_parser;
    header_parser.header_limit(16 * 1024);
    header_parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    header_parser.eager(false);
    if (!feed(header_parser, rest, [](const auto& p) { return p.is_header_done(); })) return 0;
    api_request req;
    req.method = std::string(header_parser.get().method_string());
    req.target = std::string(header_parser.get().target());
    // The Host check comes first in the session: any bytes, no crash; a refused Host ends the
    // connection, and its answer is valid JSON.
    {
      const auto h = header_parser.get()[http::field::host];
      const std::string_view host(h.data(), h.size());
      if (!(host.empty() && header_parser.get().version() < 11) && !host_allowed(host, {})) {
        require(misdirected_host(host).status == 421);
        return 0;
      }
    }
    const auto length = header_parser.content_length();
    if (length && *length > limits.max_body_bytes) return 0;  // the server answers 400 and stops
    http::request_parser<http::string_body> parser(std::move(header_parser));
    parser.body_limit(limits.max_body_bytes);
    parser.eager(true);
    if (!feed(parser, rest, [](const auto& p) { return p.is_done(); })) return 0;
    req.body = std::move(parser.get().body());
    require(req.body.size() <= limits.max_body_bytes);
    check_helpers(req);
    if (!parser.keep_alive()) return 0;
  }
  return 0;
}

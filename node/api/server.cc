#include "node/api/server.h"

#include "node/api/host_check.h"
#include "node/deploy/errc.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <limits>
#include <map>
#include <optional>
#include <set>

namespace meshdeploy::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;

// Parked long polls, keyed by deployment id. Lives on the io thread only.
struct server::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& io_, asio::thread_pool& pool_, router& r_, server_options o)
      : io(io_), pool(pool_), r(r_), options(std::move(o)), acceptor(io_) {}

  asio::io_context& io;
  asio::thread_pool& pool;
  router& r;
  server_options options;
  tcp::acceptor acceptor;
  std::multimap<std::string, std::weak_ptr<asio::steady_timer>> waiters;
  std::set<std::shared_ptr<tcp::socket>> sockets;  // open connections, closed on stop
  bool stopped = false;

  awaitable<void> accept_loop();
  awaitable<void> session(std::shared_ptr<tcp::socket> socket);
  // A route's answer, and whether it parked as a long poll before it (request_metrics).
  struct dispatched {
    api_response res;
    bool long_poll = false;
  };
  awaitable<dispatched> dispatch(api_request req);
  // Waits for a route's asynchronous answer (api_response::deferred).
  awaitable<api_response> wait_deferred(api_response pending);
  // Deferred answers park under this key in `waiters`, so that stop() cancels them; no
  // deployment id contains a space.
  static constexpr const char* deferred_waiter_key = "(deferred answer)";
};

namespace {

std::string temp_name() {
  unsigned char b[8];
  randombytes_buf(b, sizeof b);
  std::string s = "upload-";
  for (unsigned char c : b) s += fmt::format("{:02x}", c);
  return s;
}

http::response<http::string_body> to_http(const api_response& a, unsigned version,
                                          bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(a.status), version};
  res.set(http::field::server, "meshdeploy");
  res.set(http::field::content_type, a.content_type);
  res.keep_alive(keep_alive);
  res.body() = a.body;
  res.prepare_payload();
  // After prepare_payload, so an answer to HEAD can state the Content-Length of the body it
  // does not carry (S3 HeadObject, node/aws/s3_api.h).
  for (const auto& [name, value] : a.headers) res.set(name, value);
  return res;
}

}  // namespace

awaitable<api_response> server::impl::wait_deferred(api_response pending) {
  if (stopped) {
    co_return error_response(
        make_error(deploy::errc::unavailable, "the node is shutting down; ask another node"));
  }
  // The route answers through `reply`, which may run before `deferred` returns; the timer is
  // the backstop deadline and is cancelled by the answer or by stop().
  auto timer = std::make_shared<asio::steady_timer>(io);
  timer->expires_after(pending.wait_timeout > std::chrono::milliseconds::zero()
                           ? pending.wait_timeout
                           : std::chrono::milliseconds(30'000));
  auto answer = std::make_shared<std::optional<api_response>>();
  pending.deferred([timer, answer](api_response res) {
    if (answer->has_value()) return;  // a second call is a route bug: the first one counts
    *answer = std::move(res);
    timer->cancel();
  });
  if (!answer->has_value()) {
    const auto parked = waiters.emplace(deferred_waiter_key, timer);
    error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!stopped) waiters.erase(parked);  // stop() clears them all
  }
  if (answer->has_value()) co_return std::move(**answer);
  if (stopped) {
    co_return error_response(
        make_error(deploy::errc::unavailable, "the node is shutting down; ask another node"));
  }
  if (pending.timeout_answer) co_return *pending.timeout_answer;
  co_return error_response(make_error(deploy::errc::timed_out,
                                      "the node could not answer in time (another host it "
                                      "asked did not answer)"));
}

awaitable<server::impl::dispatched> server::impl::dispatch(api_request req) {
  if (options.handle_on_pool || router::is_upload(req.method, req.target)) {
    // Hashing and moving a bundle can take a while: keep it off the io thread.
    co_await asio::post(pool, asio::use_awaitable);
    api_response res = r.handle(req);
    co_await asio::post(io, asio::use_awaitable);
    co_return dispatched{std::move(res)};
  }
  bool parked = false;
  for (int rounds = 0; rounds < 1000; ++rounds) {
    api_response res = r.handle(req);
    if (res.deferred) {
      // Not `co_return dispatched{co_await ...}`: g++ 12 mishandles a co_await inside a braced
      // initializer (the answer's body was freed early: garbage in remote log reads).
      api_response answer = co_await wait_deferred(std::move(res));
      co_return dispatched{std::move(answer), parked};
    }
    if (!res.wait_for_deployment || stopped) co_return dispatched{std::move(res), parked};
    parked = true;
    auto timer = std::make_shared<asio::steady_timer>(io);
    timer->expires_after(res.wait_timeout);
    waiters.emplace(*res.wait_for_deployment, timer);
    error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      res.wait_for_deployment.reset();
      co_return dispatched{std::move(res), true};  // timed out: the unchanged document
    }
    // Woken by notify(): handle again and see the new version.
  }
  co_return dispatched{r.handle(req), true};
}

awaitable<void> server::impl::session(std::shared_ptr<tcp::socket> socket) {
  auto self = shared_from_this();
  beast::flat_buffer buffer;
  error_code ec;
  for (;;) {
    http::request_parser<http::empty_body> header_parser;
    header_parser.header_limit(16 * 1024);
    // Beast checks Content-Length against the body limit only while it reads the header (its
    // default is 1 MiB), before the route is known: no limit there (the largest value: Boost
    // 1.74 treats boost::none as a limit every length exceeds); each route's limit is checked
    // against Content-Length below and enforced by its parser on chunked bodies.
    header_parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    // Idle keep-alive connections and slow clients are cut after a while.
    asio::steady_timer deadline(io);
    deadline.expires_after(std::chrono::seconds(120));
    deadline.async_wait([socket](error_code e) {
      if (!e) socket->close();
    });
    co_await http::async_read_header(*socket, buffer, header_parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    api_request req;
    req.method = std::string(header_parser.get().method_string());
    req.target = std::string(header_parser.get().target());
    for (const auto& field : header_parser.get()) {
      req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    const unsigned version = header_parser.get().version();
    const bool keep_alive = header_parser.get().keep_alive();
    const auto started = std::chrono::steady_clock::now();
    const std::string method = req.method, target = req.target;
    const std::string route = options.metrics_route ? options.metrics_route(req) : std::string();
    auto record = [&](const dispatched& d) {
      if (!options.metrics) return;
      if (d.long_poll) {
        options.metrics->observe_long_poll();
        return;
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      if (route.empty()) {
        options.metrics->observe(method, target, d.res.status, seconds);
      } else {
        options.metrics->observe_route(route, method, d.res.status, seconds);
      }
    };
    // DNS rebinding: a browser page whose name resolves to this node says so in Host. Refused
    // before any body is read; the connection closes after the answer.
    {
      const auto h = header_parser.get()[http::field::host];
      const std::string_view host(h.data(), h.size());
      if (!(host.empty() && version < 11) && !host_allowed(host, options.allowed_hosts)) {
        dispatched refused{misdirected_host(host)};
        record(refused);
        deadline.cancel();
        auto out = to_http(refused.res, version, false);
        co_await http::async_write(*socket, out, asio::redirect_error(asio::use_awaitable, ec));
        break;
      }
    }
    std::filesystem::path upload;
    const auto too_long = [&](std::uint64_t limit) {
      const auto length = header_parser.content_length();
      return length && *length > limit;
    };
    const bool upload_route = router::is_upload(req.method, req.target);
    const bool over_limit =
        too_long(upload_route ? options.max_upload_bytes : options.max_body_bytes);
    // A client that asks first (Expect: 100-continue; the aws CLI does for S3 bodies) is told to
    // send its body now; otherwise it waits a second before sending it anyway.
    if (!over_limit && beast::iequals(header_parser.get()[http::field::expect], "100-continue")) {
      http::response<http::empty_body> go_on{http::status::continue_, version};
      co_await http::async_write(*socket, go_on, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    if (upload_route && over_limit) {
      ec = http::error::body_limit;
    } else if (upload_route) {
      http::request_parser<http::file_body> parser(std::move(header_parser));
      parser.body_limit(options.max_upload_bytes);
      upload = options.upload_dir / temp_name();
      parser.get().body().open(upload.c_str(), beast::file_mode::write, ec);
      if (ec) {
        spdlog::error("cannot open upload file {}: {}", upload.string(), ec.message());
        break;
      }
      deadline.expires_after(std::chrono::minutes(30));
      deadline.async_wait([socket](error_code e) {
        if (!e) socket->close();
      });
      co_await http::async_read(*socket, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      parser.get().body().close();
      req.body_file = upload;
    } else if (over_limit) {
      ec = http::error::body_limit;
    } else {
      http::request_parser<http::string_body> parser(std::move(header_parser));
      parser.body_limit(options.max_body_bytes);
      co_await http::async_read(*socket, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      req.body = std::move(parser.get().body());
    }
    deadline.cancel();
    dispatched answer;
    if (ec == http::error::body_limit) {
      answer.res = error_response(make_error(deploy::errc::invalid_argument,
                                             "request body is larger than this node accepts"));
    } else if (ec) {
      break;
    } else {
      answer = co_await dispatch(std::move(req));
    }
    record(answer);
    const api_response& res = answer.res;
    if (!upload.empty()) {
      std::error_code fec;
      std::filesystem::remove(upload, fec);  // gone already when the registry took it
    }
    auto out = to_http(res, version, keep_alive && !ec);
    co_await http::async_write(*socket, out, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !out.keep_alive()) break;
  }
  error_code ignored;
  socket->shutdown(tcp::socket::shutdown_both, ignored);
  socket->close(ignored);
  sockets.erase(socket);
}

awaitable<void> server::impl::accept_loop() {
  auto self = shared_from_this();
  for (;;) {
    error_code ec;
    auto socket = std::make_shared<tcp::socket>(io);
    co_await acceptor.async_accept(*socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || stopped) co_return;
    if (ec) {
      spdlog::warn("api accept: {}", ec.message());
      continue;
    }
    sockets.insert(socket);
    asio::co_spawn(io, session(socket), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("api session ended with an exception: {}", ex.what());
      }
    });
  }
}

result<tcp::endpoint> parse_endpoint(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return make_error(deploy::errc::invalid_argument,
                      fmt::format("address '{}' is not HOST:PORT", text));
  }
  std::string host(text.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(std::string(text.substr(colon + 1)), &used);
    if (used != text.size() - colon - 1) port = 70000;
  } catch (...) {
    port = 70000;
  }
  if (ec || port > 65535) {
    return make_error(
        deploy::errc::invalid_argument,
        fmt::format("address '{}' is not HOST:PORT with a numeric IP and port", text));
  }
  return tcp::endpoint(addr, static_cast<unsigned short>(port));
}

server::server(asio::io_context& io, asio::thread_pool& pool, router& r, server_options options)
    : impl_(std::make_shared<impl>(io, pool, r, std::move(options))) {}

server::~server() { stop(); }

result<void> server::start() {
  MESH_TRY(auto ep, parse_endpoint(impl_->options.bind));
  error_code ec;
  std::filesystem::create_directories(impl_->options.upload_dir);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(deploy::errc::invalid_argument,
                      fmt::format("cannot listen on {}: {}", impl_->options.bind, ec.message()));
  }
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  return ok();
}

tcp::endpoint server::local_endpoint() const {
  error_code ec;
  return impl_->acceptor.local_endpoint(ec);
}

void server::stop() {
  auto i = impl_;
  asio::post(i->io, [i] {
    if (i->stopped) return;
    i->stopped = true;
    error_code ec;
    i->acceptor.close(ec);
    for (auto& [id, w] : i->waiters) {
      if (auto t = w.lock()) t->cancel();
    }
    i->waiters.clear();
    for (const auto& s : i->sockets) s->close(ec);
  });
}

void server::notify(const std::string& deployment_id) {
  auto i = impl_;
  asio::post(i->io, [i, deployment_id] {
    auto [begin, end] = i->waiters.equal_range(deployment_id);
    for (auto it = begin; it != end; ++it) {
      if (auto t = it->second.lock()) t->cancel();
    }
    i->waiters.erase(begin, end);
  });
}

}  // namespace meshdeploy::api

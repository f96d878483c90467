#include "node/aws/frontend.h"

#include "node/aws/codedeploy_api.h"
#include "node/aws/s3_api.h"
#include "node/deploy/errc.h"
#include "node/deploy/status.h"

#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>

namespace meshdeploy::aws {

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Writes "HOST:PORT\n" to `file` atomically (tests and scripts read the bound port there).
void write_addr(const std::filesystem::path& file, const boost::asio::ip::tcp::endpoint& ep) {
  const std::filesystem::path tmp = file.string() + ".tmp";
  std::ofstream(tmp) << fmt::format("{}:{}\n", ep.address().to_string(), ep.port());
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
}

}  // namespace

struct frontend::impl {
  boost::asio::io_context& io;
  boost::asio::thread_pool& pool;
  api::router& native;
  deploy::registry& reg;
  deploy::local_deployer& deployer;
  const records::store& store;
  api::node_info info;
  frontend_options options;
  access_keys keys;
  std::unique_ptr<object_store> objects;
  std::unique_ptr<api::router> aws_router, s3_router;
  std::unique_ptr<api::server> aws_server, s3_server;
};

frontend::frontend(boost::asio::io_context& io, boost::asio::thread_pool& pool, api::router& native,
                   deploy::registry& reg, deploy::local_deployer& deployer,
                   const records::store& store, api::node_info info, frontend_options options)
    : impl_(new impl{io,
                     pool,
                     native,
                     reg,
                     deployer,
                     store,
                     std::move(info),
                     std::move(options),
                     {},
                     {},
                     {},
                     {},
                     {},
                     {}}) {}

frontend::~frontend() { stop(); }

result<void> frontend::start() {
  impl& m = *impl_;
  if (m.options.credentials.empty()) {
    if (!m.options.aws_api.empty() || !m.options.s3_api.empty()) {
      return make_error(deploy::errc::invalid_argument,
                        "--aws-api and --s3-api need --aws-credentials FILE (the access keys; "
                        "meshdeploy access-key create)");
    }
    return ok();
  }
  auto keys = access_keys::load(m.options.credentials);
  if (!keys) return keys.error().with_context("--aws-credentials");
  m.keys = std::move(keys).value();
  const std::filesystem::path dir = m.options.data_dir / "aws";
  std::error_code ec;
  std::filesystem::create_directories(dir / "tmp", ec);
  if (ec) {
    return make_error(deploy::errc::internal,
                      fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  }
  if (!m.options.s3_api.empty()) m.objects = std::make_unique<object_store>(dir / "s3");
  const auto native = [&r = m.native](const api::api_request& req) { return r.handle(req); };
  codedeploy_context ctx{m.reg,  m.store, m.keys, m.objects.get(), dir, native, m.options.node_name,
                         wall_ms};
  ctx.offload = [&io = m.io, &pool = m.pool](std::function<void()> work,
                                             std::function<void()> then) {
    boost::asio::post(pool, [&io, work = std::move(work), then = std::move(then)] {
      work();
      boost::asio::post(io, then);
    });
  };
  m.native.add_route_handler(make_codedeploy_routes(ctx, false));
  if (!m.options.aws_api.empty()) {
    m.aws_router = std::make_unique<api::router>(m.reg, m.deployer, m.info);
    m.aws_router->add_route_handler(make_codedeploy_routes(ctx, true));
    api::server_options so{m.options.aws_api, dir / "tmp"};
    so.allowed_hosts = m.options.allowed_hosts;
    so.metrics = m.options.metrics;
    so.metrics_route = codedeploy_route;
    m.aws_server = std::make_unique<api::server>(m.io, m.pool, *m.aws_router, so);
    if (auto s = m.aws_server->start(); !s) return s.error().with_context("--aws-api");
    write_addr(m.options.data_dir / "aws-api.addr", m.aws_server->local_endpoint());
    spdlog::info("CodeDeploy API on {}:{}", m.aws_server->local_endpoint().address().to_string(),
                 m.aws_server->local_endpoint().port());
  }
  if (m.objects) {
    m.s3_router = std::make_unique<api::router>(m.reg, m.deployer, m.info);
    m.s3_router->add_route_handler(make_s3_routes(s3_context{*m.objects, m.keys, wall_ms}));
    api::server_options so{m.options.s3_api, dir / "tmp"};
    so.max_body_bytes = max_s3_body_bytes;
    so.handle_on_pool = true;
    so.allowed_hosts = m.options.allowed_hosts;
    so.metrics = m.options.metrics;
    so.metrics_route = s3_route;
    m.s3_server = std::make_unique<api::server>(m.io, m.pool, *m.s3_router, so);
    if (auto s = m.s3_server->start(); !s) return s.error().with_context("--s3-api");
    write_addr(m.options.data_dir / "s3-api.addr", m.s3_server->local_endpoint());
    spdlog::info("S3 API on {}:{}", m.s3_server->local_endpoint().address().to_string(),
                 m.s3_server->local_endpoint().port());
  }
  return ok();
}

void frontend::stop() {
  if (!impl_) return;
  if (impl_->aws_server) impl_->aws_server->stop();
  if (impl_->s3_server) impl_->s3_server->stop();
}

}  // namespace meshdeploy::aws

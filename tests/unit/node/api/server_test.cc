// The HTTP server's deferred answers over a real loopback socket: a route that never replies is
// answered at its deadline, with the answer the route named for a timeout or 504 HostTimedOut.
#include "node/api/server.h"

#include "tests/support/local_node.h"
#include "tests/support/temp_dir.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

namespace meshdeploy::api {
namespace {

namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() {
    // /never answers through `deferred` and never calls reply; /never-named also names the
    // answer for a timeout.
    router_->add_route_handler([this](const api_request& req) -> std::optional<api_response> {
      if (req.target != "/never" && req.target != "/never-named") return std::nullopt;
      api_response res;
      res.wait_timeout = std::chrono::milliseconds(200);
      res.deferred = [this](api_response::reply_fn reply) { parked_.push_back(std::move(reply)); };
      if (req.target == "/never-named") {
        api_response named;
        named.status = 504;
        named.body = R"({"__type":"RequestTimeoutException"})";
        res.timeout_answer = std::make_shared<const api_response>(std::move(named));
      }
      return res;
    });
    server_options so{"127.0.0.1:0", dir_ / "uploads"};
    server_ = std::make_unique<server>(io_, pool_, *router_, so);
    EXPECT_TRUE(server_->start().has_value());
    io_thread_ = std::thread([this] { io_.run(); });
  }
  ~ServerTest() override {
    boost::asio::post(io_, [this] { server_->stop(); });
    io_.stop();
    io_thread_.join();
    pool_.join();
  }

  // One GET over a fresh connection; the response.
  http::response<http::string_body> get(const std::string& target) {
    boost::asio::io_context client;
    tcp::socket s(client);
    s.connect(server_->local_endpoint());
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(s, req);
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    return res;
  }

  test::temp_dir dir_{"meshdeploy-server"};
  test::local_node node_{dir_.path()};
  std::unique_ptr<router>& router_ = node_.router;
  std::vector<api_response::reply_fn> parked_;  // io thread only
  boost::asio::io_context io_;
  boost::asio::thread_pool pool_{1};
  std::unique_ptr<server> server_;
  std::thread io_thread_;
};

TEST_F(ServerTest, DeferredAnswerWithoutReplyIsHostTimedOutAtItsDeadline) {
  const auto start = std::chrono::steady_clock::now();
  const auto res = get("/never");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(res.result_int(), 504u);
  EXPECT_EQ(nlohmann::json::parse(res.body())["error"]["code"], "HostTimedOut") << res.body();
  EXPECT_GE(took, std::chrono::milliseconds(200));
  EXPECT_LT(took, std::chrono::seconds(20));
}

TEST_F(ServerTest, DeferredAnswerWithoutReplyIsTheRoutesTimeoutAnswer) {
  const auto res = get("/never-named");
  EXPECT_EQ(res.result_int(), 504u);
  EXPECT_EQ(nlohmann::json::parse(res.body())["__type"], "RequestTimeoutException") << res.body();
}

}  // namespace
}  // namespace meshdeploy::api

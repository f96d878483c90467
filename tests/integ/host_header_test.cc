// DNS rebinding, end to end: a real node answers a request whose Host is an IP literal,
// localhost or a name given with --api-allowed-host, and refuses any other Host with 421 on the
// API and the console alike (node/api/host_check.h). Requests are forged with curl.
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace meshdeploy::test {
namespace {

namespace fs = std::filesystem;

class HostHeaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = std::make_unique<node_process>(
        "host-1", dir_ / "data", dir_ / "root", std::vector<std::string>{"role=web"},
        std::vector<std::string>{"--api-allowed-host", "deploy.corp.example"});
    ASSERT_FALSE(node_->api().empty());
    port_ = node_->api().substr(node_->api().rfind(':') + 1);
  }

  // (status, body) of GET `path` with Host `host`.
  std::pair<std::string, std::string> get(const std::string& path, const std::string& host) {
    auto r = run_command({"/usr/bin/curl", "-s", "--max-time", "10", "-w", "\n%{http_code}", "-H",
                          "Host: " + host, "http://" + node_->api() + path});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto nl = r.out.rfind('\n');
    if (nl == std::string::npos) return {"", r.out};
    return {r.out.substr(nl + 1), r.out.substr(0, nl)};
  }

  temp_dir dir_{"meshdeploy-host"};
  std::unique_ptr<node_process> node_;
  std::string port_;
};

TEST_F(HostHeaderTest, AForeignHostIsRefusedOnTheApiAndTheConsole) {
  for (const char* path : {"/v1/health", "/ui/", "/metrics", "/v1/deployments"}) {
    const auto [status, body] = get(path, "evil.example:" + port_);
    EXPECT_EQ(status, "421") << path << ": " << body;
    const auto j = nlohmann::json::parse(body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << body;
    EXPECT_EQ(j["error"]["code"], "MisdirectedRequest");
    const std::string msg = j["error"]["message"];
    EXPECT_NE(msg.find("evil.example"), std::string::npos) << msg;
    EXPECT_NE(msg.find("api-allowed-host"), std::string::npos) << msg;
  }
  // A rebinding name that merely starts like an address is refused too.
  EXPECT_EQ(get("/v1/health", "127.0.0.1.evil.example").first, "421");
}

TEST_F(HostHeaderTest, AddressesLocalhostAndAllowedNamesAreAnswered) {
  for (const std::string& host : std::vector<std::string>{
           "127.0.0.1:" + port_, "127.0.0.1", "localhost:" + port_, "[::1]:" + port_,
           "deploy.corp.example:" + port_, "DEPLOY.corp.example"}) {
    const auto [status, body] = get("/v1/health", host);
    EXPECT_EQ(status, "200") << host << ": " << body;
  }
  EXPECT_EQ(get("/ui/", "localhost:" + port_).first, "200");
  // The CLI, which sends the address it was given, keeps working.
  EXPECT_EQ(node_->cli({"app", "list"}).exit_code, 0);
}

TEST_F(HostHeaderTest, APostWithAForeignHostIsRefusedBeforeItsRouteLooksAtIt) {
  auto post = [&](const std::string& host) {
    auto r = run_command({"/usr/bin/curl", "-s", "--max-time", "10", "-w", "\n%{http_code}", "-H",
                          "Host: " + host, "-H", "Content-Type: application/json", "--data-binary",
                          "{\"record\":\"00\"}", "http://" + node_->api() + "/v1/records"});
    return r.out.substr(r.out.rfind('\n') + 1);
  };
  EXPECT_EQ(post("evil.example"), "421");
  // The same request from an accepted Host reaches the route, which refuses the record.
  EXPECT_EQ(post("127.0.0.1:" + port_), "400");
}

}  // namespace
}  // namespace meshdeploy::test

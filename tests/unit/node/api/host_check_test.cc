#include "node/api/host_check.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace meshdeploy::api {
namespace {

TEST(HostCheckTest, IpLiteralsAndLocalhostPassWithOrWithoutPort) {
  const std::vector<std::string> none;
  for (const char* h :
       {"127.0.0.1", "127.0.0.1:7947", "10.1.2.3:80", "[::1]", "[::1]:7947", "[fe80::1]:1",
        "localhost", "LOCALHOST:7947", "localhost.", "localhost.:80", "bucket.localhost:9000"}) {
    EXPECT_TRUE(host_allowed(h, none)) << h;
  }
}

TEST(HostCheckTest, OtherNamesAndMalformedValuesAreRefused) {
  const std::vector<std::string> none;
  for (const char* h : {"evil.example",
                        "evil.example:7947",
                        "127.0.0.1.evil.example",
                        "localhost.evil.example",
                        "evillocalhost",
                        "",
                        ":80",
                        "127.0.0.1:",
                        "127.0.0.1:80x",
                        "127.0.0.1:123456",
                        "::1",
                        "[::1",
                        "[::1]x",
                        "[::1]:",
                        "[fe80::1%25eth0]",
                        "[evil.example]",
                        "0x7f.0.0.1",
                        "127.1",
                        "127.0.0.1 ",
                        " 127.0.0.1"}) {
    EXPECT_FALSE(host_allowed(h, none)) << h;
  }
}

TEST(HostCheckTest, AllowedNamesPassWithoutCaseOrTrailingDot) {
  const std::vector<std::string> allowed{"deploy.corp.example", "node-7."};
  EXPECT_TRUE(host_allowed("deploy.corp.example", allowed));
  EXPECT_TRUE(host_allowed("Deploy.Corp.Example:7947", allowed));
  EXPECT_TRUE(host_allowed("deploy.corp.example.", allowed));
  EXPECT_TRUE(host_allowed("node-7", allowed));
  EXPECT_FALSE(host_allowed("x.deploy.corp.example", allowed));
  EXPECT_FALSE(host_allowed("deploy.corp.example.evil", allowed));
  EXPECT_FALSE(host_allowed("evil.example", allowed));
}

TEST(HostCheckTest, AllowedNameValidation) {
  EXPECT_TRUE(valid_allowed_host("deploy.corp.example"));
  EXPECT_TRUE(valid_allowed_host("node-7"));
  for (const char* bad : {"", "a:80", "http://a", "a b", ".a", "-a", "a/b", "*.a"}) {
    EXPECT_FALSE(valid_allowed_host(bad)) << bad;
  }
  EXPECT_FALSE(valid_allowed_host(std::string(254, 'a')));
}

TEST(HostCheckTest, TheRefusalNamesTheHostAndTheSetting) {
  const auto r = misdirected_host("evil.example\"\n:1");
  EXPECT_EQ(r.status, 421u);
  const auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["error"]["code"], "MisdirectedRequest");
  const std::string msg = j["error"]["message"];
  EXPECT_NE(msg.find("evil.example\"\n:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--api-allowed-host"), std::string::npos) << msg;
  // Invalid UTF-8 in a hostile Host still gives valid JSON.
  EXPECT_NO_THROW(nlohmann::json::parse(misdirected_host("\xff\xfe").body));
}

}  // namespace
}  // namespace meshdeploy::api

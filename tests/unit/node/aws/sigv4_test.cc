// SigV4 against AWS's published vectors: the "aws-sig-v4-test-suite" (service "service", key
// AKIDEXAMPLE, 2015-08-30) and the S3 examples of "Signature Calculations for the Authorization
// Header" (bucket examplebucket, key AKIAIOSFODNN7EXAMPLE, 2013-05-24). The expected canonical
// requests and signatures are AWS's, copied, not computed here. (The suite's two
// post-x-www-form-urlencoded cases are left out: their published canonical request, signed
// header list and signature disagree with each other. Signed bodies are covered by the S3 PUT
// example and the requests captured from the aws CLI.)
#include "node/aws/sigv4.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace meshdeploy::aws {
namespace {

constexpr const char* suite_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr const char* suite_date = "20150830T123600Z";
constexpr std::int64_t suite_now = 1440938160;  // 2015-08-30T12:36:00Z
constexpr const char* empty_sha =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct suite_case {
  const char* name;
  const char* method;
  const char* target;
  header_list headers;
  const char* body;
  const char* signed_headers;  // as in the vector's Authorization header
  const char* creq;            // AWS's canonical request
  const char* signature;       // AWS's signature
};

std::vector<suite_case> suite_cases() {
  const header_list base = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", suite_date}};
  auto with = [&](header_list extra) {
    header_list h = {{"Host", "example.amazonaws.com"}};
    for (auto& e : extra) h.push_back(e);
    h.emplace_back("X-Amz-Date", suite_date);
    return h;
  };
  return {
      {"get-vanilla", "GET", "/", base, "", "host;x-amz-date",
       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-header-key-duplicate", "GET", "/",
       with({{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}), "",
       "host;my-header1;x-amz-date",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:"
       "20150830T123600Z\n\nhost;my-header1;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {"get-header-value-order", "GET", "/",
       with({{"My-Header1", "value4"},
             {"My-Header1", "value1"},
             {"My-Header1", "value3"},
             {"My-Header1", "value2"}}),
       "", "host;my-header1;x-amz-date",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\nx-amz-date:"
       "20150830T123600Z\n\nhost;my-header1;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
      {"get-header-value-trim", "GET", "/",
       with({{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}), "",
       "host;my-header1;my-header2;x-amz-date",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
       "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"get-unreserved", "GET",
       "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", base, "",
       "host;x-amz-date",
       "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:"
       "example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {"get-utf8", "GET", "/\xe1\x88\xb4", base, "", "host;x-amz-date",
       "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
       "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
      {"get-vanilla-empty-query-key", "GET", "/?Param1=value1", base, "", "host;x-amz-date",
       "GET\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-"
       "amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
      {"get-vanilla-query-order-key", "GET", "/?Param1=value2&Param1=Value1", base, "",
       "host;x-amz-date",
       "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:"
       "20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
      {"get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", base, "",
       "host;x-amz-date",
       "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:"
       "20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-vanilla-query-order-value", "GET", "/?Param1=value2&Param1=value1", base, "",
       "host;x-amz-date",
       "GET\n/\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:"
       "20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
      {"get-vanilla-utf8-query", "GET", "/?\xe1\x88\xb4=bar", base, "", "host;x-amz-date",
       "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-"
       "amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
      {"get-relative-relative", "GET", "/example1/example2/../..", base, "", "host;x-amz-date",
       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"post-header-value-case", "POST", "/", with({{"My-Header1", "VALUE1"}}), "",
       "host;my-header1;x-amz-date",
       "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\n"
       "host;my-header1;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
      {"post-vanilla-query", "POST", "/?Param1=value1", base, "", "host;x-amz-date",
       "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;"
       "x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
  };
}

std::vector<std::string> split_names(const char* s) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = s; *p; ++p) {
    if (*p == ';') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += *p;
    }
  }
  out.push_back(cur);
  return out;
}

const credential_scope suite_scope{"AKIDEXAMPLE", "20150830", "us-east-1", "service"};

secret_lookup only(std::string id, std::string secret) {
  return [id, secret](const std::string& k) -> std::optional<std::string> {
    if (k == id) return secret;
    return std::nullopt;
  };
}

std::string authz(const suite_case& c) {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
         "SignedHeaders=" +
         std::string(c.signed_headers) + ", Signature=" + c.signature;
}

TEST(Sigv4Test, CanonicalRequestsAndSignaturesMatchTheTestSuite) {
  for (const auto& c : suite_cases()) {
    SCOPED_TRACE(c.name);
    const auto names = split_names(c.signed_headers);
    const std::string creq = canonical_request(c.method, c.target, c.headers, names,
                                               sha256_hex(c.body), uri_style::normalized);
    EXPECT_EQ(creq, c.creq);
    EXPECT_EQ(signature(suite_secret, suite_scope, string_to_sign(suite_date, suite_scope, creq)),
              c.signature);
  }
}

TEST(Sigv4Test, VerifyAcceptsEveryTestSuiteRequest) {
  for (const auto& c : suite_cases()) {
    SCOPED_TRACE(c.name);
    header_list h = c.headers;
    h.emplace_back("Authorization", authz(c));
    auto r = verify({c.method, c.target, h, c.body}, only("AKIDEXAMPLE", suite_secret), suite_now,
                    {uri_style::normalized, "service"});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r.value().access_key_id, "AKIDEXAMPLE");
    EXPECT_EQ(r.value().region, "us-east-1");
  }
}

struct s3_fixture {
  static constexpr const char* secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  static constexpr const char* date = "20130524T000000Z";
  static constexpr std::int64_t now = 1369353600;  // 2013-05-24T00:00:00Z
  credential_scope scope{"AKIAIOSFODNN7EXAMPLE", "20130524", "us-east-1", "s3"};
};

TEST(Sigv4Test, S3DocumentationExamplesSign) {
  const s3_fixture f;
  const std::string host = "examplebucket.s3.amazonaws.com";
  // GET Object with a Range header.
  {
    const header_list h = {{"Host", host},
                           {"Range", "bytes=0-9"},
                           {"x-amz-content-sha256", empty_sha},
                           {"x-amz-date", f.date}};
    const std::vector<std::string> names = {"host", "range", "x-amz-content-sha256", "x-amz-date"};
    const std::string creq =
        canonical_request("GET", "/test.txt", h, names, empty_sha, uri_style::s3);
    EXPECT_EQ(sha256_hex(creq), "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    EXPECT_EQ(signature(f.secret, f.scope, string_to_sign(f.date, f.scope, creq)),
              "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  }
  // PUT Object "test$file.text" with a body and a Date header.
  {
    const std::string body = "Welcome to Amazon S3.";
    const std::string hash = sha256_hex(body);
    EXPECT_EQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    const header_list h = {{"Host", host},
                           {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                           {"x-amz-date", f.date},
                           {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                           {"x-amz-content-sha256", hash}};
    const std::vector<std::string> names = {"date", "host", "x-amz-content-sha256", "x-amz-date",
                                            "x-amz-storage-class"};
    header_list signed_h = h;
    signed_h.emplace_back(
        "Authorization",
        sign(f.secret, f.scope, f.date, "PUT", "/test%24file.text", h, names, hash, uri_style::s3));
    EXPECT_NE(signed_h.back().second.find(
                  "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
              std::string::npos);
    auto r = verify({"PUT", "/test%24file.text", signed_h, body},
                    only("AKIAIOSFODNN7EXAMPLE", f.secret), f.now, {uri_style::s3, "s3"});
    EXPECT_TRUE(r) << r.error().message;
  }
  // GET Bucket lifecycle (a query key without a value) and list objects (query order).
  {
    const header_list h = {
        {"Host", host}, {"x-amz-content-sha256", empty_sha}, {"x-amz-date", f.date}};
    const std::vector<std::string> names = {"host", "x-amz-content-sha256", "x-amz-date"};
    auto sig = [&](const char* target) {
      return signature(
          f.secret, f.scope,
          string_to_sign(f.date, f.scope,
                         canonical_request("GET", target, h, names, empty_sha, uri_style::s3)));
    };
    EXPECT_EQ(sig("/?lifecycle"),
              "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    EXPECT_EQ(sig("/?prefix=J&max-keys=2"),
              "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  }
}

// Requests the real aws CLI (Debian's awscli 2.9.19) sent to a capturing server, with access key
// "AK" and secret "SK": an `aws s3 cp` PutObject and a `aws deploy list-applications`.
TEST(Sigv4Test, RequestsCapturedFromTheAwsCliVerify) {
  auto lookup = only("AK", "SK");
  const header_list put = {
      {"Host", "127.0.0.1:18777"},
      {"Accept-Encoding", "identity"},
      {"Content-Type", "text/plain"},
      {"User-Agent",
       "aws-cli/2.9.19 Python/3.11.2 Linux/6.18.44-fc-v782 "
       "source/x86_64.debian.12 prompt/off command/s3.cp"},
      {"Content-MD5", "sZRqySSS0jR8YjW00mERhA=="},
      {"Expect", "100-continue"},
      {"X-Amz-Date", "20261129T174740Z"},
      {"X-Amz-Content-SHA256", "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"},
      {"Authorization",
       "AWS4-HMAC-SHA256 Credential=AK/20261129/us-east-1/s3/aws4_request, "
       "SignedHeaders=content-md5;content-type;host;x-amz-content-sha256;x-amz-date, "
       "Signature=9d9cf608133a79de7954f55f682685b004fc8e97a14d34cb91545db26a0eaf4f"},
      {"Content-Length", "6"}};
  auto s3 = verify({"PUT", "/releases/app.zip", put, "hello\n"}, lookup, 1795974460,
                   {uri_style::s3, "s3"});
  EXPECT_TRUE(s3) << s3.error().message;
  const header_list cd = {
      {"Host", "127.0.0.1:18777"},
      {"Accept-Encoding", "identity"},
      {"X-Amz-Target", "CodeDeploy_20141006.ListApplications"},
      {"Content-Type", "application/x-amz-json-1.1"},
      {"User-Agent",
       "aws-cli/2.9.19 Python/3.11.2 Linux/6.18.44-fc-v782 "
       "source/x86_64.debian.12 prompt/off command/deploy.list-applications"},
      {"X-Amz-Date", "20261129T174745Z"},
      {"Authorization",
       "AWS4-HMAC-SHA256 Credential=AK/20261129/us-east-1/codedeploy/aws4_request, "
       "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
       "Signature=118f6ff25e80ceda98da05bc7da953a5d677d6871b5c51c2b29887cf16e31270"},
      {"Content-Length", "2"}};
  auto json11 =
      verify({"POST", "/", cd, "{}"}, lookup, 1795974465, {uri_style::normalized, "codedeploy"});
  EXPECT_TRUE(json11) << json11.error().message;
  EXPECT_FALSE(
      verify({"POST", "/", cd, "{ }"}, lookup, 1795974465, {uri_style::normalized, "codedeploy"}));
}

class Sigv4VerifyTest : public ::testing::Test {
 protected:
  const suite_case c = suite_cases()[0];  // get-vanilla
  header_list signed_headers() const {
    header_list h = c.headers;
    h.emplace_back("Authorization", authz(c));
    return h;
  }
  result<verified_request> run(const header_list& h, std::int64_t now = suite_now,
                               std::string secret = suite_secret, std::string body = "") {
    return verify({c.method, c.target, h, body}, only("AKIDEXAMPLE", secret), now,
                  {uri_style::normalized, "service"});
  }
  static errc code(const result<verified_request>& r) {
    return static_cast<errc>(r.error().code.value());
  }
};

TEST_F(Sigv4VerifyTest, WrongSecretIsInvalidSignature) {
  auto r = run(signed_headers(), suite_now, "not-the-secret");
  ASSERT_FALSE(r);
  EXPECT_EQ(code(r), errc::invalid_signature);
  EXPECT_EQ(error_shape(code(r), api_flavour::json).code, "InvalidSignatureException");
  EXPECT_EQ(error_shape(code(r), api_flavour::s3).code, "SignatureDoesNotMatch");
}

TEST_F(Sigv4VerifyTest, AlteredRequestIsInvalidSignature) {
  header_list h = signed_headers();
  h[0].second = "other.amazonaws.com";
  auto r = run(h);
  ASSERT_FALSE(r);
  EXPECT_EQ(code(r), errc::invalid_signature);
}

TEST_F(Sigv4VerifyTest, UnknownAccessKeyIsRefused) {
  header_list h = signed_headers();
  h.back().second.replace(h.back().second.find("AKIDEXAMPLE"), 11, "AKIDOTHER00");
  auto r = run(h);
  ASSERT_FALSE(r);
  EXPECT_EQ(code(r), errc::unknown_access_key);
  EXPECT_EQ(error_shape(code(r), api_flavour::json).code, "UnrecognizedClientException");
}

TEST_F(Sigv4VerifyTest, ClockSkewBeyondFifteenMinutesIsRefused) {
  EXPECT_TRUE(run(signed_headers(), suite_now + 15 * 60));
  EXPECT_TRUE(run(signed_headers(), suite_now - 15 * 60));
  auto late = run(signed_headers(), suite_now + 15 * 60 + 1);
  ASSERT_FALSE(late);
  EXPECT_EQ(code(late), errc::request_time_skewed);
  auto early = run(signed_headers(), suite_now - 15 * 60 - 1);
  ASSERT_FALSE(early);
  EXPECT_EQ(code(early), errc::request_time_skewed);
  EXPECT_EQ(error_shape(errc::request_time_skewed, api_flavour::s3).code, "RequestTimeTooSkewed");
}

TEST_F(Sigv4VerifyTest, MissingAuthorizationIsMissingToken) {
  auto r = run(c.headers);
  ASSERT_FALSE(r);
  EXPECT_EQ(code(r), errc::missing_authentication);
}

TEST_F(Sigv4VerifyTest, MalformedAuthorizationHeadersAreIncomplete) {
  const std::vector<std::string> bad = {
      "",
      "AWS4-HMAC-SHA1 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=host;x-amz-date, Signature=" +
          std::string(64, 'a'),
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service, "
      "SignedHeaders=host;x-amz-date, Signature=" +
          std::string(64, 'a'),
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=x-amz-date;host, Signature=" +
          std::string(64, 'a'),
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=host;x-amz-date, Signature=XYZ",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=host;x-amz-date",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083/us-east-1/service/aws4_request, "
      "SignedHeaders=host;x-amz-date, Signature=" +
          std::string(64, 'a'),
      // host not signed
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=x-amz-date, Signature=" +
          std::string(64, 'a'),
      // a signed header the request lacks
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=host;my-header;x-amz-date, Signature=" +
          std::string(64, 'a'),
      // another day than X-Amz-Date
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/service/aws4_request, "
      "SignedHeaders=host;x-amz-date, Signature=" +
          std::string(64, 'a'),
      // another service
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, "
      "SignedHeaders=host;x-amz-date, Signature=" +
          std::string(64, 'a'),
      std::string(9000, 'A'),
  };
  for (const auto& a : bad) {
    SCOPED_TRACE(a.substr(0, 120));
    header_list h = c.headers;
    h.emplace_back("Authorization", a);
    auto r = run(h);
    ASSERT_FALSE(r);
    EXPECT_EQ(code(r), errc::incomplete_signature);
  }
}

TEST_F(Sigv4VerifyTest, MissingOrMalformedDateIsIncomplete) {
  header_list h = {{"Host", "example.amazonaws.com"}, {"Authorization", authz(c)}};
  auto r = run(h);
  ASSERT_FALSE(r);
  EXPECT_EQ(code(r), errc::incomplete_signature);
  h.emplace_back("X-Amz-Date", "20150830T126000Z");  // minute 60
  r = run(h);
  ASSERT_FALSE(r);
  EXPECT_EQ(code(r), errc::incomplete_signature);
}

TEST_F(Sigv4VerifyTest, PayloadHashHeaderIsCheckedAgainstTheBody) {
  const s3_fixture f;
  const header_list base = {{"Host", "127.0.0.1:9000"},
                            {"x-amz-content-sha256", sha256_hex("the body")},
                            {"x-amz-date", f.date}};
  const std::vector<std::string> names = {"host", "x-amz-content-sha256", "x-amz-date"};
  header_list h = base;
  h.emplace_back("Authorization", sign(f.secret, f.scope, f.date, "PUT", "/b/k", base, names,
                                       sha256_hex("the body"), uri_style::s3));
  auto lookup = only("AKIAIOSFODNN7EXAMPLE", f.secret);
  const verify_options s3{uri_style::s3, "s3"};
  EXPECT_TRUE(verify({"PUT", "/b/k", h, "the body"}, lookup, f.now, s3));
  auto r = verify({"PUT", "/b/k", h, "another body"}, lookup, f.now, s3);
  ASSERT_FALSE(r);
  EXPECT_EQ(static_cast<errc>(r.error().code.value()), errc::content_sha256_mismatch);

  // UNSIGNED-PAYLOAD: the body is not covered, the rest is.
  header_list u = {{"Host", "127.0.0.1:9000"},
                   {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
                   {"x-amz-date", f.date}};
  u.emplace_back("Authorization", sign(f.secret, f.scope, f.date, "PUT", "/b/k", u, names,
                                       "UNSIGNED-PAYLOAD", uri_style::s3));
  EXPECT_TRUE(verify({"PUT", "/b/k", u, "any body"}, lookup, f.now, s3));

  header_list st = {{"Host", "127.0.0.1:9000"},
                    {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
                    {"x-amz-date", f.date}};
  st.emplace_back("Authorization", sign(f.secret, f.scope, f.date, "PUT", "/b/k", st, names,
                                        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", uri_style::s3));
  r = verify({"PUT", "/b/k", st, ""}, lookup, f.now, s3);
  ASSERT_FALSE(r);
  EXPECT_EQ(static_cast<errc>(r.error().code.value()), errc::unsupported_payload);
}

TEST(Sigv4DateTest, ParsesAmzDates) {
  EXPECT_EQ(parse_amz_date("19700101T000000Z"), 0);
  EXPECT_EQ(parse_amz_date("20150830T123600Z"), 1440938160);
  EXPECT_EQ(parse_amz_date("20000229T235959Z"), 951868799);
  EXPECT_FALSE(parse_amz_date("2015-08-30T12:36:00Z"));
  EXPECT_FALSE(parse_amz_date("20151330T123600Z"));
  EXPECT_FALSE(parse_amz_date("20150830T123600"));
  EXPECT_FALSE(parse_amz_date("2015083aT123600Z"));
}

TEST(Sigv4UriTest, S3KeysAreEncodedOnceAndKeepEmptySegments) {
  const header_list h = {{"host", "h"}};
  const std::vector<std::string> names = {"host"};
  EXPECT_EQ(
      canonical_request("GET", "/b/a%20b//c%2Bd", h, names, empty_sha, uri_style::s3).substr(0, 22),
      "GET\n/b/a%20b//c%2Bd\n\nh");
  EXPECT_EQ(
      canonical_request("GET", "/a%20b", h, names, empty_sha, uri_style::normalized).substr(0, 14),
      "GET\n/a%2520b\n\n");
}

}  // namespace
}  // namespace meshdeploy::aws

// The S3 subset over a real object store in a temp dir (no sockets): requests are SigV4-signed
// the way the aws CLI signs them (path-style, X-Amz-Content-Sha256).
#include "node/aws/s3_api.h"

#include "tests/support/signed_records.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/node/aws/aws_test_support.h"

#include <gtest/gtest.h>

#include <string>

namespace meshdeploy::aws {
namespace {

constexpr const char* key_id = "MDAKS3S3S3S3S3S3S3S3";
constexpr const char* secret = "czMtc2VjcmV0";

class S3ApiTest : public ::testing::Test {
 protected:
  S3ApiTest() {
    keys_.add(access_key{key_id, secret, "ci", security::generate_identity("ci")});
    handler_ = make_s3_routes(s3_context{objects_, keys_, [] { return test::wall_ms(); }});
  }

  api::api_response call(const std::string& method, const std::string& target,
                         std::string body = "", header_list extra = {}, const char* sec = secret) {
    api::api_request r;
    r.method = method;
    r.target = target;
    r.body = std::move(body);
    r.headers = {{"Host", "127.0.0.1:9000"}};
    for (auto& h : extra) r.headers.push_back(std::move(h));
    sigtest::sign_request(r, key_id, sec, "s3", test::wall_ms());
    return *handler_(r);
  }
  static std::string header(const api::api_response& r, const std::string& name) {
    for (const auto& [n, v] : r.headers) {
      if (n == name) return v;
    }
    return {};
  }

  test::temp_dir dir_{"meshdeploy-aws-s3"};
  object_store objects_{dir_ / "s3"};
  access_keys keys_;
  api::router::route_handler handler_;
};

TEST_F(S3ApiTest, ObjectsArePutHeadGotRangedAndListed) {
  const std::string bytes = "0123456789abcdefghij";
  auto put = call("PUT", "/releases/app%20v1/bundle.zip", bytes);
  ASSERT_EQ(put.status, 200u) << put.body;
  const std::string etag = header(put, "ETag");
  EXPECT_EQ(etag.front(), '"');
  auto head = call("HEAD", "/releases/app%20v1/bundle.zip");
  EXPECT_EQ(head.status, 200u);
  EXPECT_EQ(header(head, "Content-Length"), "20");
  EXPECT_EQ(header(head, "ETag"), etag);
  EXPECT_TRUE(head.body.empty());
  auto get = call("GET", "/releases/app%20v1/bundle.zip");
  EXPECT_EQ(get.status, 200u);
  EXPECT_EQ(get.body, bytes);
  auto range = call("GET", "/releases/app%20v1/bundle.zip", "", {{"Range", "bytes=5-9"}});
  EXPECT_EQ(range.status, 206u);
  EXPECT_EQ(range.body, "56789");
  EXPECT_EQ(header(range, "Content-Range"), "bytes 5-9/20");
  EXPECT_EQ(call("GET", "/releases/app%20v1/bundle.zip", "", {{"Range", "bytes=-3"}}).body, "hij");
  EXPECT_EQ(call("GET", "/releases/app%20v1/bundle.zip", "", {{"Range", "bytes=30-"}}).status,
            416u);

  ASSERT_EQ(call("PUT", "/releases/top.tar", "x").status, 200u);
  auto list = call("GET", "/releases?list-type=2&delimiter=%2F&prefix=");
  ASSERT_EQ(list.status, 200u);
  EXPECT_NE(list.body.find("<Key>top.tar</Key>"), std::string::npos) << list.body;
  EXPECT_NE(list.body.find("<Prefix>app v1/</Prefix>"), std::string::npos) << list.body;
  auto page = call("GET", "/releases?list-type=2&max-keys=1");
  EXPECT_NE(page.body.find("<IsTruncated>true</IsTruncated>"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("<Key>app v1/bundle.zip</Key>"), std::string::npos);
  auto next =
      call("GET", "/releases?list-type=2&max-keys=1&continuation-token=app%20v1%2Fbundle.zip");
  EXPECT_NE(next.body.find("<Key>top.tar</Key>"), std::string::npos) << next.body;

  auto missing = call("GET", "/releases/nope");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_NE(missing.body.find("<Code>NoSuchKey</Code>"), std::string::npos);
  EXPECT_EQ(call("HEAD", "/releases/nope").status, 404u);
  EXPECT_EQ(call("GET", "/other?list-type=2").status, 404u);
  EXPECT_EQ(call("DELETE", "/releases/top.tar").status, 204u);
  EXPECT_EQ(call("GET", "/releases/top.tar").status, 404u);
}

TEST_F(S3ApiTest, MultipartUploadsAssembleTheirPartsInOrder) {
  auto init = call("POST", "/releases/big.zip?uploads");
  ASSERT_EQ(init.status, 200u) << init.body;
  const auto a = init.body.find("<UploadId>") + 10;
  const std::string id = init.body.substr(a, init.body.find("</UploadId>") - a);
  const std::string p1(1000, 'a'), p2(10, 'b');
  auto r1 = call("PUT", "/releases/big.zip?partNumber=1&uploadId=" + id, p1);
  auto r2 = call("PUT", "/releases/big.zip?partNumber=2&uploadId=" + id, p2);
  ASSERT_EQ(r1.status, 200u) << r1.body;
  ASSERT_EQ(r2.status, 200u);
  auto bad = call("POST", "/releases/big.zip?uploadId=" + id,
                  "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"nope\"</ETag>"
                  "</Part></CompleteMultipartUpload>");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_NE(bad.body.find("InvalidPart"), std::string::npos) << bad.body;
  auto done = call("POST", "/releases/big.zip?uploadId=" + id,
                   "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                   "<Part><ETag>" +
                       header(r1, "ETag") +
                       "</ETag><PartNumber>1</PartNumber></Part>"
                       "<Part><ETag>" +
                       header(r2, "ETag") +
                       "</ETag><PartNumber>2</PartNumber></Part>"
                       "</CompleteMultipartUpload>");
  ASSERT_EQ(done.status, 200u) << done.body;
  EXPECT_NE(done.body.find("-2&quot;</ETag>"), std::string::npos) << done.body;
  EXPECT_EQ(call("GET", "/releases/big.zip").body, p1 + p2);
  EXPECT_EQ(call("PUT", "/releases/big.zip?partNumber=3&uploadId=" + id, "x").status, 404u);
  EXPECT_EQ(call("POST", "/releases/big.zip?uploadId=" + id, "<oops").status, 400u);
}

TEST_F(S3ApiTest, BadSignaturesNamesAndBodiesAreRefusedInS3Shape) {
  auto wrong = call("PUT", "/releases/x", "data", {}, "wrong");
  EXPECT_EQ(wrong.status, 403u);
  EXPECT_NE(wrong.body.find("<Code>SignatureDoesNotMatch</Code>"), std::string::npos);
  api::api_request anon{"GET", "/releases/x", "", {}, {{"Host", "h"}}};
  auto denied = *handler_(anon);
  EXPECT_EQ(denied.status, 403u);
  EXPECT_NE(denied.body.find("<Code>AccessDenied</Code>"), std::string::npos);
  // A body that is not the one signed.
  api::api_request r{"PUT", "/releases/x", "data", {}, {{"Host", "h"}}};
  sigtest::sign_request(r, key_id, secret, "s3", test::wall_ms());
  r.body = "other";
  auto mismatch = *handler_(r);
  EXPECT_EQ(mismatch.status, 400u);
  EXPECT_NE(mismatch.body.find("XAmzContentSHA256Mismatch"), std::string::npos);
  EXPECT_NE(call("PUT", "/Bad_Bucket/x", "d").body.find("InvalidBucketName"), std::string::npos);
  EXPECT_EQ(call("PUT", "/releases/" + std::string(1100, 'k'), "d").status, 400u);
  EXPECT_EQ(call("PUT", "/releases/y", "d", {{"x-amz-copy-source", "/releases/x"}}).status, 501u);
}

TEST(S3RouteTest, LabelsNameWhatThePathNames) {
  const auto route = [](std::string target) {
    api::api_request req;
    req.method = "GET";
    req.target = std::move(target);
    return s3_route(req);
  };
  EXPECT_EQ(route("/"), "S3:service");
  EXPECT_EQ(route("/releases"), "S3:bucket");
  EXPECT_EQ(route("/releases/?list-type=2"), "S3:bucket");
  EXPECT_EQ(route("/releases/app.zip"), "S3:object");
  EXPECT_EQ(route("/releases/a/b/c.zip?uploads"), "S3:object");
}

}  // namespace
}  // namespace meshdeploy::aws

// End-to-end with the real aws CLI (Debian's awscli, /usr/bin/aws; scripts/setup installs it):
// a `meshdeploy node run` process serving the CodeDeploy API on its API port and the S3 subset
// on --s3-api, driven by `aws s3 cp` and `aws deploy ...` exactly as a CI pipeline would, with
// only the endpoint URL changed. Nothing in ~ is read or written (HOME and the aws config files
// point into the temp dir). docs/aws-compatibility.md.
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <thread>

namespace meshdeploy::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* aws_binary = "/usr/bin/aws";

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void write_file(const fs::path& p, const std::string& text, fs::perms mode = fs::perms(0644)) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  fs::permissions(p, mode);
}

class AwsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(aws_binary)) {
      GTEST_SKIP() << aws_binary << " is missing (Debian's awscli; scripts/setup installs it)";
    }
    // A node without the AWS API creates the access keys (an admin-signed grant each), then
    // restarts with them.
    node_ = std::make_unique<node_process>("aws-1", dir_ / "data", dir_ / "root",
                                           std::vector<std::string>{"role=web"});
    ASSERT_FALSE(node_->api().empty()) << read_all(node_->log_path());
    const fs::path admin = node_->cluster_dir() / "admin.key";
    writer_ = create_key(admin, "ci", {"*:*"});
    reader_ = create_key(admin, "auditor", {"read:*"});
    ASSERT_FALSE(writer_.first.empty());
    ASSERT_FALSE(reader_.first.empty());
    node_->stop();
    node_.reset();
    node_ = std::make_unique<node_process>(
        "aws-1", dir_ / "data", dir_ / "root", std::vector<std::string>{"role=web"},
        std::vector<std::string>{"--aws-credentials", (dir_ / "creds.json").string(), "--s3-api",
                                 "127.0.0.1:0"});
    ASSERT_FALSE(node_->api().empty()) << read_all(node_->log_path());
    s3_ = read_all(dir_ / "data" / "s3-api.addr");
    ASSERT_FALSE(s3_.empty());
    write_file(dir_ / "home" / "aws-config", "");
    write_file(dir_ / "home" / "aws-credentials", "");
  }

  void TearDown() override { node_.reset(); }

  std::pair<std::string, std::string> create_key(const fs::path& admin, const std::string& name,
                                                 std::vector<std::string> allow) {
    std::vector<std::string> args = {
        "access-key", "create", "--admin-key", admin.string(),
        "--operator", name,     "--out",       (dir_ / "creds.json").string(),
        "--output",   "json"};
    for (auto& a : allow) {
      args.push_back("--allow");
      args.push_back(a);
    }
    auto r = node_->cli_as("", args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    const json j = json::parse(r.out, nullptr, false);
    if (!j.is_object()) return {};
    return {j.value("accessKeyId", ""), j.value("secretAccessKey", "")};
  }

  command_result aws(std::vector<std::string> args,
                     const std::pair<std::string, std::string>* key = nullptr,
                     std::chrono::milliseconds timeout = 120s) {
    if (key == nullptr) key = &writer_;
    const bool s3 = args[0] == "s3";
    // env -i: only these variables, whatever the test's own environment holds (HOME included).
    std::vector<std::string> argv = {
        "/usr/bin/env",
        "-i",
        "PATH=/usr/bin:/bin",
        "HOME=" + (dir_ / "home").string(),
        "AWS_ACCESS_KEY_ID=" + key->first,
        "AWS_SECRET_ACCESS_KEY=" + key->second,
        "AWS_DEFAULT_REGION=us-east-1",
        "AWS_CONFIG_FILE=" + (dir_ / "home" / "aws-config").string(),
        "AWS_SHARED_CREDENTIALS_FILE=" + (dir_ / "home" / "aws-credentials").string(),
        "AWS_PAGER=",
        "AWS_EC2_METADATA_DISABLED=true",
        aws_binary};
    for (auto& a : args) argv.push_back(std::move(a));
    argv.push_back("--endpoint-url");
    argv.push_back("http://" + (s3 ? s3_ : node_->api()));
    return run_command(argv, {}, timeout);
  }

  json aws_json(std::vector<std::string> args) {
    args.push_back("--output");
    args.push_back("json");
    auto r = aws(std::move(args));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return json::parse(r.out.empty() ? std::string("{}") : r.out, nullptr, false);
  }

  // A zip bundle of an appspec with one hook running `script` (and a file to install).
  fs::path make_bundle(const std::string& name, const std::string& script, int timeout_s = 60) {
    const fs::path src = dir_ / "src" / name;
    write_file(src / "app.txt", "hello from " + name + "\n");
    write_file(src / "appspec.yml",
               "version: 0.0\nos: linux\nfiles:\n  - source: app.txt\n    destination: /srv/" +
                   name +
                   "\nhooks:\n  AfterInstall:\n    - location: scripts/hook.sh\n      "
                   "timeout: " +
                   std::to_string(timeout_s) + "\n");
    write_file(src / "scripts" / "hook.sh", "#!/bin/sh\n" + script + "\n", fs::perms(0755));
    const fs::path zip = dir_ / (name + ".zip");
    auto r = run_command(
        {"/bin/sh", "-c", "cd '" + src.string() + "' && zip -qr '" + zip.string() + "' ."});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return zip;
  }

  std::string deploy(const std::string& key) {
    const json d = aws_json({"deploy", "create-deployment", "--application-name", "web",
                             "--deployment-group-name", "prod", "--s3-location",
                             "bucket=releases,key=" + key + ",bundleType=zip"});
    return d.value("deploymentId", "");
  }

  // Polls get-deployment until the status is one of `want` (at most `limit`).
  std::string wait_status(const std::string& id, std::vector<std::string> want,
                          std::chrono::seconds limit = 90s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    std::string st;
    for (int i = 0; i < 200 && std::chrono::steady_clock::now() < end; ++i) {
      st = aws_json({"deploy", "get-deployment", "--deployment-id", id})["deploymentInfo"].value(
          "status", "");
      if (std::find(want.begin(), want.end(), st) != want.end()) return st;
      std::this_thread::sleep_for(500ms);
    }
    return st;
  }

  temp_dir dir_{"meshdeploy-awscli"};
  std::unique_ptr<node_process> node_;
  std::string s3_;
  std::pair<std::string, std::string> writer_, reader_;
};

TEST_F(AwsCliTest, CodeDeployAndS3WorkfowThroughTheAwsCli) {
  ASSERT_EQ(aws({"deploy", "create-application", "--application-name", "web"}).exit_code, 0);
  auto cfg = aws({"deploy", "create-deployment-config", "--deployment-config-name", "Half",
                  "--minimum-healthy-hosts", "type=FLEET_PERCENT,value=50"});
  ASSERT_EQ(cfg.exit_code, 0) << cfg.err;
  auto grp = aws({"deploy", "create-deployment-group", "--application-name", "web",
                  "--deployment-group-name", "prod", "--service-role-arn",
                  "arn:aws:iam::123456789012:role/CodeDeploy", "--deployment-config-name",
                  "CodeDeployDefault.OneAtATime", "--ec2-tag-filters",
                  "Key=role,Value=web,Type=KEY_AND_VALUE"});
  ASSERT_EQ(grp.exit_code, 0) << grp.err;
  const json configs = aws_json({"deploy", "list-deployment-configs"});
  EXPECT_NE(configs.dump().find("CodeDeployDefault.OneAtATime"), std::string::npos);
  EXPECT_NE(configs.dump().find("Half"), std::string::npos);

  // Upload with aws s3 cp, deploy it, wait with the CLI's own waiter.
  const fs::path ok_zip = make_bundle("good", "echo installed");
  auto cp = aws({"s3", "cp", ok_zip.string(), "s3://releases/app.zip"});
  ASSERT_EQ(cp.exit_code, 0) << cp.out << cp.err;
  const std::string id = deploy("app.zip");
  ASSERT_EQ(id.rfind("d-", 0), 0u);
  auto wait =
      aws({"deploy", "wait", "deployment-successful", "--deployment-id", id}, nullptr, 150s);
  EXPECT_EQ(wait.exit_code, 0) << wait.out << wait.err;
  const json info = aws_json({"deploy", "get-deployment", "--deployment-id", id})["deploymentInfo"];
  EXPECT_EQ(info["status"], "Succeeded");
  EXPECT_EQ(info["revision"]["s3Location"]["key"], "app.zip");
  EXPECT_EQ(info["deploymentOverview"]["Succeeded"], 1);
  EXPECT_EQ(read_all(dir_ / "root/srv/good/app.txt"), "hello from good");
  const json inst = aws_json({"deploy", "list-deployment-instances", "--deployment-id", id});
  ASSERT_EQ(inst["instancesList"], json::array({"aws-1"}));
  const json one = aws_json(
      {"deploy", "get-deployment-instance", "--deployment-id", id, "--instance-id", "aws-1"});
  bool after_install = false;
  for (const auto& e : one["instanceSummary"]["lifecycleEvents"]) {
    if (e["lifecycleEventName"] == "AfterInstall") {
      after_install = true;
      EXPECT_EQ(e["status"], "Succeeded") << e.dump();
    }
  }
  EXPECT_TRUE(after_install) << one.dump();

  // A failing revision: the waiter fails and the instance shows the diagnostics.
  const fs::path bad_zip = make_bundle("bad", "echo broken >&2; exit 3");
  ASSERT_EQ(aws({"s3", "cp", bad_zip.string(), "s3://releases/bad.zip"}).exit_code, 0);
  const std::string bad = deploy("bad.zip");
  ASSERT_FALSE(bad.empty());
  EXPECT_EQ(wait_status(bad, {"Failed", "Succeeded", "Stopped"}), "Failed");
  const json failed = aws_json(
      {"deploy", "get-deployment-instance", "--deployment-id", bad, "--instance-id", "aws-1"});
  bool diagnosed = false;
  for (const auto& e : failed["instanceSummary"]["lifecycleEvents"]) {
    if (e["lifecycleEventName"] == "AfterInstall") {
      diagnosed = true;
      EXPECT_EQ(e["status"], "Failed");
      EXPECT_EQ(e["diagnostics"]["errorCode"], "ScriptFailed") << e.dump();
      EXPECT_NE(e["diagnostics"].value("logTail", "").find("broken"), std::string::npos)
          << e.dump();
    }
  }
  EXPECT_TRUE(diagnosed) << failed.dump();

  // stop-deployment of a slow one.
  const fs::path slow_zip = make_bundle("slow", "sleep 15", 60);
  ASSERT_EQ(aws({"s3", "cp", slow_zip.string(), "s3://releases/slow.zip"}).exit_code, 0);
  const std::string slow = deploy("slow.zip");
  ASSERT_FALSE(slow.empty());
  wait_status(slow, {"InProgress"}, 30s);
  auto stop = aws({"deploy", "stop-deployment", "--deployment-id", slow});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(wait_status(slow, {"Stopped", "Failed", "Succeeded"}, 90s), "Stopped");

  // Refusals in AWS's shapes.
  auto wrong = aws({"deploy", "list-applications"}, nullptr);
  EXPECT_EQ(wrong.exit_code, 0);
  const std::pair<std::string, std::string> bad_secret{writer_.first, "not-the-secret"};
  auto sig = aws({"deploy", "list-applications"}, &bad_secret);
  EXPECT_NE(sig.exit_code, 0);
  EXPECT_NE(sig.err.find("InvalidSignatureException"), std::string::npos) << sig.err;
  auto denied = aws({"deploy", "create-application", "--application-name", "other"}, &reader_);
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_NE(denied.err.find("AccessDeniedException"), std::string::npos) << denied.err;
  auto s3_denied = aws({"s3", "ls", "s3://releases"}, &bad_secret);
  EXPECT_NE(s3_denied.exit_code, 0);
  EXPECT_NE(s3_denied.err.find("SignatureDoesNotMatch"), std::string::npos) << s3_denied.err;
}

TEST_F(AwsCliTest, LargeObjectsGoUpInPartsAndComeBackInRanges) {
  // Over the CLI's 8 MiB multipart threshold: CreateMultipartUpload, UploadPart x2, Complete;
  // the download uses ranged GETs.
  const fs::path big = dir_ / "big.bin";
  {
    std::ofstream out(big, std::ios::binary);
    std::string block(1 << 20, '\0');
    for (int i = 0; i < 9; ++i) {
      for (std::size_t j = 0; j < block.size(); ++j)
        block[j] = static_cast<char>((i * 31 + j) % 251);
      out << block;
    }
  }
  auto up = aws({"s3", "cp", big.string(), "s3://releases/big.bin"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  auto ls = aws({"s3", "ls", "s3://releases/"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("9437184 big.bin"), std::string::npos) << ls.out;
  auto down = aws({"s3", "cp", "s3://releases/big.bin", (dir_ / "back.bin").string()});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(read_all(big), read_all(dir_ / "back.bin"));
}

TEST_F(AwsCliTest, AForeignHostIsRefusedOnBothFrontEnds) {
  // DNS rebinding (node/api/host_check.h): the S3 port and the CodeDeploy API answer 421 to a
  // Host that is not an address, localhost or an allowed name, before any signature check.
  auto status = [&](const std::string& url, const std::string& host,
                    std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-s", "--max-time",   "10", "-o",
                                     "/dev/null",     "-w", "%{http_code}", "-H", "Host: " + host};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    return run_command(argv).out;
  };
  EXPECT_EQ(status("http://" + s3_ + "/releases", "evil.example"), "421");
  EXPECT_EQ(status("http://" + node_->api() + "/", "evil.example",
                   {"-X", "POST", "-H", "X-Amz-Target: CodeDeploy_20141006.ListApplications", "-H",
                    "Content-Type: application/x-amz-json-1.1", "--data", "{}"}),
            "421");
  // Unsigned from an accepted Host: the front end itself answers (403, not 421).
  EXPECT_EQ(status("http://" + s3_ + "/releases", "127.0.0.1"), "403");
}

}  // namespace
}  // namespace meshdeploy::test

// End-to-end with the real aws CLI (Debian's awscli, /usr/bin/aws; scripts/setup installs it)
// against a real cluster: three `meshdeploy node run` processes on loopback, each serving the
// CodeDeploy API on its API port and the S3 subset on --s3-api, driven by `aws s3 cp` and
// `aws deploy ...` exactly as a CI pipeline would, with only the endpoint URL changed. Writes go
// through one node and are read, waited for and stopped through the others. Nothing in ~ is
// read or written (HOME and the aws config files point into the temp dir).
// docs/aws-compatibility.md.
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

namespace meshdeploy::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* aws_binary = "/usr/bin/aws";
constexpr int kNodes = 3;
constexpr int A = 0, B = 1, C = 2;

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

std::string node_name(int i) { return std::string("aws-") + static_cast<char>('a' + i); }

class AwsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(aws_binary)) {
      GTEST_SKIP() << aws_binary << " is missing (Debian's awscli; scripts/setup installs it)";
    }
    // Node A without the AWS API creates the access keys (an admin-signed grant each, which
    // spreads to the nodes that join later), then restarts with them; B and C join it.
    auto first = std::make_unique<node_process>(node_name(A), data(A), root(A),
                                                std::vector<std::string>{"role=web"});
    ASSERT_FALSE(first->api().empty()) << read_all(first->log_path());
    const fs::path admin = first->cluster_dir() / "admin.key";
    writer_ = create_key(*first, admin, "ci", {"*:*"});
    reader_ = create_key(*first, admin, "auditor", {"read:*"});
    ASSERT_FALSE(writer_.first.empty());
    ASSERT_FALSE(reader_.first.empty());
    first->stop();
    first.reset();
    for (int i = 0; i < node_count(); ++i) {
      std::vector<std::string> args = {"--aws-credentials", (dir_ / "creds.json").string(),
                                       "--s3-api",          "127.0.0.1:0",
                                       "--gossip-profile",  "local"};
      if (i > 0) {
        const std::string seed = read_all(data(A) / "gossip.addr");
        args.push_back("--join");
        args.push_back(seed.substr(0, seed.find('\n')));
      }
      nodes_.push_back(std::make_unique<node_process>(node_name(i), data(i), root(i),
                                                      std::vector<std::string>{"role=web"}, args));
      ASSERT_FALSE(nodes_.back()->api().empty()) << read_all(nodes_.back()->log_path());
      s3_.push_back(read_all(data(i) / "s3-api.addr"));
      ASSERT_FALSE(s3_.back().empty());
    }
    write_file(dir_ / "home" / "aws-config", "");
    write_file(dir_ / "home" / "aws-credentials", "");
    // Every node sees every other alive (bounded: the local gossip profile's anti-entropy
    // reaches a late joiner within seconds).
    for (int i = 0; i < node_count(); ++i) {
      ASSERT_TRUE(eventually(30s,
                             [&] {
                               const json m = json::parse(
                                   nodes_[i]->cli({"members", "-o", "json"}).out, nullptr, false);
                               int alive = 0;
                               if (m.is_object() && m["members"].is_array()) {
                                 for (const auto& x : m["members"])
                                   alive += x.value("status", "") == "alive";
                               }
                               return alive == node_count();
                             }))
          << node_name(i) << " does not see all nodes alive";
    }
  }

  void TearDown() override { nodes_.clear(); }

  // How many nodes SetUp starts (aws-a, aws-b, ...).
  virtual int node_count() const { return kNodes; }

  fs::path data(int i) const { return dir_ / (node_name(i) + "-data"); }
  fs::path root(int i) const { return dir_ / (node_name(i) + "-root"); }

  // Polls `done` every 250 ms for at most `limit` (and at most 400 times).
  static bool eventually(std::chrono::milliseconds limit, const std::function<bool()>& done) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (int i = 0; i < 400; ++i) {
      if (done()) return true;
      if (std::chrono::steady_clock::now() >= end) return false;
      std::this_thread::sleep_for(250ms);
    }
    return false;
  }

  std::pair<std::string, std::string> create_key(const node_process& via, const fs::path& admin,
                                                 const std::string& name,
                                                 std::vector<std::string> allow) {
    std::vector<std::string> args = {
        "access-key", "create", "--admin-key", admin.string(),
        "--operator", name,     "--out",       (dir_ / "creds.json").string(),
        "--output",   "json"};
    for (auto& a : allow) {
      args.push_back("--allow");
      args.push_back(a);
    }
    auto r = via.cli_as("", args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    const json j = json::parse(r.out, nullptr, false);
    if (!j.is_object()) return {};
    return {j.value("accessKeyId", ""), j.value("secretAccessKey", "")};
  }

  // Runs the aws CLI against node `via` (its API port, or its --s3-api for `aws s3`).
  command_result aws(int via, std::vector<std::string> args,
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
    argv.push_back("http://" + (s3 ? s3_[via] : nodes_[via]->api()));
    return run_command(argv, {}, timeout);
  }

  json aws_json(int via, std::vector<std::string> args) {
    args.push_back("--output");
    args.push_back("json");
    auto r = aws(via, std::move(args));
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

  std::string deploy(int via, const std::string& bucket, const std::string& key) {
    const json d = aws_json(
        via, {"deploy", "create-deployment", "--application-name", "web", "--deployment-group-name",
              "prod", "--s3-location", "bucket=" + bucket + ",key=" + key + ",bundleType=zip"});
    return d.value("deploymentId", "");
  }

  // get-deployment's deploymentInfo through `via` once `done` holds (at most `limit`); the
  // last one read otherwise ({} while the node does not know the deployment).
  json info_until(int via, const std::string& id, const std::function<bool(const json&)>& done,
                  std::chrono::seconds limit = 60s) {
    json info;
    eventually(limit, [&] {
      auto r = aws(via, {"deploy", "get-deployment", "--deployment-id", id, "--output", "json"});
      const json j = json::parse(r.out.empty() ? std::string("{}") : r.out, nullptr, false);
      info = j.is_object() && j.contains("deploymentInfo") ? j["deploymentInfo"] : json::object();
      return !info.empty() && done(info);
    });
    return info;
  }

  static std::function<bool(const json&)> status_in(std::vector<std::string> want) {
    return [want](const json& i) {
      return std::find(want.begin(), want.end(), i.value("status", "")) != want.end();
    };
  }

  // The AfterInstall event of `host` in deployment `id`, read through `via`, once it has
  // `status` (at most 30 s; the rows of the last hosts may reach a node after the end).
  json after_install(int via, const std::string& id, const std::string& host,
                     const std::string& status) {
    json event;
    eventually(30s, [&] {
      auto r = aws(via, {"deploy", "get-deployment-instance", "--deployment-id", id,
                         "--instance-id", host, "--output", "json"});
      const json j = json::parse(r.out.empty() ? std::string("{}") : r.out, nullptr, false);
      if (!j.is_object() || !j.contains("instanceSummary")) return false;
      for (const auto& e : j["instanceSummary"]["lifecycleEvents"]) {
        if (e.value("lifecycleEventName", "") == "AfterInstall") event = e;
      }
      return event.value("status", "") == status;
    });
    return event;
  }

  temp_dir dir_{"meshdeploy-awscli"};
  std::vector<std::unique_ptr<node_process>> nodes_;
  std::vector<std::string> s3_;
  std::pair<std::string, std::string> writer_, reader_;
};

TEST_F(AwsCliTest, CodeDeployAndS3WorkflowAcrossTheMesh) {
  // Definitions through node A.
  ASSERT_EQ(aws(A, {"deploy", "create-application", "--application-name", "web"}).exit_code, 0);
  auto cfg = aws(A, {"deploy", "create-deployment-config", "--deployment-config-name", "Half",
                     "--minimum-healthy-hosts", "type=FLEET_PERCENT,value=50"});
  ASSERT_EQ(cfg.exit_code, 0) << cfg.err;
  auto grp = aws(A, {"deploy", "create-deployment-group", "--application-name", "web",
                     "--deployment-group-name", "prod", "--service-role-arn",
                     "arn:aws:iam::123456789012:role/CodeDeploy", "--deployment-config-name",
                     "CodeDeployDefault.OneAtATime", "--ec2-tag-filters",
                     "Key=role,Value=web,Type=KEY_AND_VALUE"});
  ASSERT_EQ(grp.exit_code, 0) << grp.err;
  const json configs = aws_json(A, {"deploy", "list-deployment-configs"});
  EXPECT_NE(configs.dump().find("CodeDeployDefault.OneAtATime"), std::string::npos);
  EXPECT_NE(configs.dump().find("Half"), std::string::npos);

  // Upload to A with aws s3 cp and deploy through A to the three hosts; wait through B with the
  // CLI's own waiter once B knows the deployment.
  const fs::path ok_zip = make_bundle("good", "echo installed");
  auto cp = aws(A, {"s3", "cp", ok_zip.string(), "s3://releases/app.zip"});
  ASSERT_EQ(cp.exit_code, 0) << cp.out << cp.err;
  const std::string id = deploy(A, "releases", "app.zip");
  ASSERT_EQ(id.rfind("d-", 0), 0u);
  ASSERT_FALSE(info_until(B, id, [](const json&) { return true; }).empty());
  auto wait =
      aws(B, {"deploy", "wait", "deployment-successful", "--deployment-id", id}, nullptr, 120s);
  EXPECT_EQ(wait.exit_code, 0) << wait.out << wait.err;
  const json on_b = info_until(
      B, id, [](const json& i) { return i["deploymentOverview"].value("Succeeded", 0) == kNodes; });
  EXPECT_EQ(on_b.value("status", ""), "Succeeded") << on_b.dump();
  EXPECT_EQ(on_b["deploymentOverview"]["Succeeded"], kNodes) << on_b.dump();
  // A shows the location the revision was registered from; B, which never saw that S3 object,
  // names the mesh revision.
  const json on_a = aws_json(A, {"deploy", "get-deployment", "--deployment-id", id});
  EXPECT_EQ(on_a["deploymentInfo"]["revision"]["s3Location"]["key"], "app.zip");
  const json mesh_loc = on_b["revision"]["s3Location"];
  EXPECT_EQ(mesh_loc["bucket"], "meshdeploy-revisions") << on_b.dump();
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_EQ(read_all(root(i) / "srv/good/app.txt"), "hello from good") << node_name(i);
  }
  json instances = aws_json(C, {"deploy", "list-deployment-instances", "--deployment-id", id});
  std::vector<std::string> hosts = instances.value("instancesList", std::vector<std::string>{});
  std::sort(hosts.begin(), hosts.end());
  EXPECT_EQ(hosts, (std::vector<std::string>{"aws-a", "aws-b", "aws-c"})) << instances.dump();
  for (int i = 0; i < kNodes; ++i) {
    const json e = after_install(i == A ? C : B, id, node_name(i), "Succeeded");
    EXPECT_EQ(e.value("status", ""), "Succeeded") << node_name(i) << " " << e.dump();
  }

  // An S3 object held by A, named through B: an AWS-shaped error naming B; the mesh revision's
  // location works through any node (B holds only the record; hosts fetch the bundle from the
  // swarm).
  auto elsewhere =
      aws(B, {"deploy", "create-deployment", "--application-name", "web", "--deployment-group-name",
              "prod", "--s3-location", "bucket=releases,key=app.zip,bundleType=zip"});
  EXPECT_NE(elsewhere.exit_code, 0);
  EXPECT_NE(elsewhere.err.find("RevisionDoesNotExistException"), std::string::npos)
      << elsewhere.err;
  EXPECT_NE(elsewhere.err.find("aws-b"), std::string::npos) << elsewhere.err;
  const std::string again = deploy(B, mesh_loc.value("bucket", ""), mesh_loc.value("key", ""));
  ASSERT_EQ(again.rfind("d-", 0), 0u);
  EXPECT_EQ(info_until(C, again, status_in({"Succeeded", "Failed", "Stopped"})).value("status", ""),
            "Succeeded");

  // A failing revision: through C the deployment fails and its first host shows the
  // diagnostics (OneAtATime: the others are skipped).
  const fs::path bad_zip = make_bundle("bad", "echo broken >&2; exit 3");
  ASSERT_EQ(aws(A, {"s3", "cp", bad_zip.string(), "s3://releases/bad.zip"}).exit_code, 0);
  const std::string bad = deploy(A, "releases", "bad.zip");
  ASSERT_FALSE(bad.empty());
  EXPECT_EQ(info_until(C, bad, status_in({"Failed", "Succeeded", "Stopped"})).value("status", ""),
            "Failed");
  const json failed_hosts = aws_json(C, {"deploy", "list-deployment-instances", "--deployment-id",
                                         bad, "--instance-status-filter", "Failed"});
  ASSERT_EQ(failed_hosts["instancesList"].size(), 1u) << failed_hosts.dump();
  const json diag =
      after_install(C, bad, failed_hosts["instancesList"][0].get<std::string>(), "Failed");
  EXPECT_EQ(diag["diagnostics"].value("errorCode", ""), "ScriptFailed") << diag.dump();
  EXPECT_NE(diag["diagnostics"].value("logTail", "").find("broken"), std::string::npos)
      << diag.dump();

  // Refusals in AWS's shapes, through B.
  const std::pair<std::string, std::string> bad_secret{writer_.first, "not-the-secret"};
  auto sig = aws(B, {"deploy", "list-applications"}, &bad_secret);
  EXPECT_NE(sig.exit_code, 0);
  EXPECT_NE(sig.err.find("InvalidSignatureException"), std::string::npos) << sig.err;
  auto denied = aws(B, {"deploy", "create-application", "--application-name", "other"}, &reader_);
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_NE(denied.err.find("AccessDeniedException"), std::string::npos) << denied.err;
  auto s3_denied = aws(B, {"s3", "ls", "s3://releases"}, &bad_secret);
  EXPECT_NE(s3_denied.exit_code, 0);
  EXPECT_NE(s3_denied.err.find("SignatureDoesNotMatch"), std::string::npos) << s3_denied.err;

  // Both front ends' calls are in A's API latency histogram, by operation.
  const std::string metrics =
      run_command({"/usr/bin/curl", "-s", "http://" + nodes_[A]->api() + "/metrics"}).out;
  EXPECT_NE(metrics.find("{route=\"CodeDeploy:CreateDeployment\",method=\"POST\",code=\"2xx\""),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("{route=\"S3:object\",method=\"PUT\",code=\"2xx\""), std::string::npos)
      << metrics;
}

// (Split from the test above to keep each under 90 s.)
TEST_F(AwsCliTest, StopAndGroupUpdateThroughOtherNodes) {
  ASSERT_EQ(aws(A, {"deploy", "create-application", "--application-name", "web"}).exit_code, 0);
  ASSERT_EQ(aws(A, {"deploy", "create-deployment-group", "--application-name", "web",
                    "--deployment-group-name", "prod", "--service-role-arn",
                    "arn:aws:iam::123456789012:role/CodeDeploy", "--ec2-tag-filters",
                    "Key=role,Value=web,Type=KEY_AND_VALUE"})
                .exit_code,
            0);
  auto config_on = [&](int via) {
    auto r = aws(via, {"deploy", "get-deployment-group", "--application-name", "web",
                       "--deployment-group-name", "prod", "--output", "json"});
    const json j = json::parse(r.out.empty() ? std::string("{}") : r.out, nullptr, false);
    return j.is_object() && j.contains("deploymentGroupInfo")
               ? j["deploymentGroupInfo"].value("deploymentConfigName", "")
               : "(" + r.err + ")";
  };
  ASSERT_TRUE(eventually(30s, [&] { return config_on(C) == "CodeDeployDefault.OneAtATime"; }));

  // A slow deployment submitted through A is stopped through B.
  const fs::path slow_zip = make_bundle("slow", "sleep 6", 60);
  ASSERT_EQ(aws(A, {"s3", "cp", slow_zip.string(), "s3://releases/slow.zip"}).exit_code, 0);
  const std::string slow = deploy(A, "releases", "slow.zip");
  ASSERT_FALSE(slow.empty());
  EXPECT_EQ(info_until(B, slow, status_in({"InProgress"}), 30s).value("status", ""), "InProgress");
  auto stop = aws(B, {"deploy", "stop-deployment", "--deployment-id", slow});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(info_until(B, slow, status_in({"Stopped", "Failed", "Succeeded"})).value("status", ""),
            "Stopped");
  EXPECT_EQ(info_until(A, slow, status_in({"Stopped", "Failed", "Succeeded"})).value("status", ""),
            "Stopped");

  auto up =
      aws(A, {"deploy", "update-deployment-group", "--application-name", "web",
              "--current-deployment-group-name", "prod", "--deployment-config-name",
              "CodeDeployDefault.AllAtOnce", "--on-premises-instance-tag-filters",
              "Key=role,Value=web,Type=KEY_AND_VALUE", "Key=tier,Value=x,Type=KEY_AND_VALUE"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  // C reads the old definition or the new one, never none.
  std::vector<std::string> seen;
  EXPECT_TRUE(eventually(30s, [&] {
    seen.push_back(config_on(C));
    return seen.back() == "CodeDeployDefault.AllAtOnce";
  }));
  for (const auto& s : seen) {
    EXPECT_TRUE(s == "CodeDeployDefault.OneAtATime" || s == "CodeDeployDefault.AllAtOnce") << s;
  }
  const json g = aws_json(C, {"deploy", "get-deployment-group", "--application-name", "web",
                              "--deployment-group-name", "prod"})["deploymentGroupInfo"];
  EXPECT_EQ(g["onPremisesInstanceTagFilters"].size(), 2u) << g.dump();
  // Updating a group that does not exist is AWS's error.
  auto missing = aws(B, {"deploy", "update-deployment-group", "--application-name", "web",
                         "--current-deployment-group-name", "nope", "--deployment-config-name",
                         "CodeDeployDefault.AllAtOnce"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("DeploymentGroupDoesNotExistException"), std::string::npos)
      << missing.err;
}

// S3 alone needs one node.
class AwsCliOneNodeTest : public AwsCliTest {
 protected:
  int node_count() const override { return 1; }
};

TEST_F(AwsCliOneNodeTest, LargeObjectsGoUpInPartsAndComeBackInRanges) {
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
  auto up = aws(A, {"s3", "cp", big.string(), "s3://releases/big.bin"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  auto ls = aws(A, {"s3", "ls", "s3://releases/"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("9437184 big.bin"), std::string::npos) << ls.out;
  auto down = aws(A, {"s3", "cp", "s3://releases/big.bin", (dir_ / "back.bin").string()});
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
  EXPECT_EQ(status("http://" + s3_[B] + "/releases", "evil.example"), "421");
  EXPECT_EQ(status("http://" + nodes_[A]->api() + "/", "evil.example",
                   {"-X", "POST", "-H", "X-Amz-Target: CodeDeploy_20141006.ListApplications", "-H",
                    "Content-Type: application/x-amz-json-1.1", "--data", "{}"}),
            "421");
  // Unsigned from an accepted Host: the front end itself answers (403, not 421).
  EXPECT_EQ(status("http://" + s3_[B] + "/releases", "127.0.0.1"), "403");
}

}  // namespace
}  // namespace meshdeploy::test

// `meshdeploy logs ID --host H` through any node (docs/cli.md, node/deploy/log_service.h), on a
// real mesh of 3 `meshdeploy node run` processes on loopback: a host's log read through another
// node, one event's part, the target reading its own log, JSON output, and the errors (unknown
// host, unknown deployment, bad event name, a killed host) with their exit codes.
#include "tests/integ/mesh_fixture.h"

namespace meshdeploy::test {
namespace {

class MeshLogsTest : public MeshFixture {
 protected:
  int node_count() const override { return 3; }

  // Deploys, to every host at once, a revision whose BeforeInstall prints "hello from ROOT" and
  // whose ValidateService prints "validated ROOT" (ROOT: the host's install root); returns the
  // deployment id once it succeeded ("" otherwise, with a test failure).
  std::string deploy_logging_revision() {
    const fs::path rev = dir_ / "logrev";
    fs::create_directories(rev / "scripts");
    fs::create_directories(rev / "content");
    std::ofstream(rev / "content" / "hello.txt") << "hello\n";
    std::ofstream(rev / "appspec.yml")
        << "version: 0.0\nos: linux\nfiles:\n"
           "  - source: content\n    destination: /srv/logs\nfile_exists_behavior: OVERWRITE\n"
           "hooks:\n"
           "  BeforeInstall:\n    - location: scripts/hello.sh\n"
           "  ValidateService:\n    - location: scripts/validate.sh\n";
    std::ofstream(rev / "scripts" / "hello.sh")
        << "#!/bin/sh\necho \"hello from $MESHDEPLOY_INSTALL_ROOT\"\n";
    std::ofstream(rev / "scripts" / "validate.sh")
        << "#!/bin/sh\necho \"validated $MESHDEPLOY_INSTALL_ROOT\"\n";
    fs::permissions(rev / "scripts" / "hello.sh", fs::perms::owner_all, fs::perm_options::add);
    fs::permissions(rev / "scripts" / "validate.sh", fs::perms::owner_all, fs::perm_options::add);
    EXPECT_EQ(cli(0, {"group", "create", "--app", "web", "--name", "logs", "--tag", "role=web",
                      "--config", "AllAtOnce"})
                  .exit_code,
              0);
    auto r =
        cli(0, {"deploy", "--app", "web", "--group", "logs", "--source", rev.string(), "--wait"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.exit_code == 0 ? r.out.substr(0, r.out.find('\n')) : std::string();
  }

  static bool has(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
  }
};

TEST_F(MeshLogsTest, AnyNodeReadsAnotherHostsLogAndOneEventOfIt) {
  const std::string id = deploy_logging_revision();
  ASSERT_FALSE(id.empty());
  const std::string hello3 = "hello from " + root(2).string();
  const std::string valid3 = "validated " + root(2).string();

  // Through node 1, host-3's whole log, then only its ValidateService part.
  auto all = cli(0, {"logs", id, "--host", "host-3"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_TRUE(has(all.out, hello3)) << all.out;
  EXPECT_TRUE(has(all.out, valid3)) << all.out;
  EXPECT_FALSE(has(all.out, "hello from " + root(0).string())) << all.out;  // not node 1's
  auto one = cli(0, {"logs", id, "--host", "host-3", "--event", "ValidateService"});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_TRUE(has(one.out, valid3)) << one.out;
  EXPECT_FALSE(has(one.out, hello3)) << one.out;

  // On the target itself, with and without --host (a mesh deployment).
  auto own = cli(2, {"logs", id});
  EXPECT_EQ(own.exit_code, 0) << own.err;
  EXPECT_TRUE(has(own.out, hello3)) << own.out;
  auto own_named = cli(2, {"logs", id, "--host", "host-3", "--event", "BeforeInstall"});
  EXPECT_EQ(own_named.exit_code, 0) << own_named.err;
  EXPECT_TRUE(has(own_named.out, hello3)) << own_named.out;
  EXPECT_FALSE(has(own_named.out, valid3)) << own_named.out;

  // JSON, through node 3 about host-2.
  auto js = cli(2, {"logs", id, "--host", "host-2", "-o", "json"});
  EXPECT_EQ(js.exit_code, 0) << js.err;
  const json doc = json::parse(js.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << js.out;
  EXPECT_EQ(doc["host"], "host-2");
  EXPECT_EQ(doc["truncated"], false);
  EXPECT_TRUE(has(doc["log"].get<std::string>(), "hello from " + root(1).string())) << js.out;

  // Errors: exit 2 and a message naming what is wrong.
  auto not_target = cli(0, {"logs", id, "--host", "host-9"});
  EXPECT_EQ(not_target.exit_code, 2);
  EXPECT_TRUE(has(not_target.err, "host 'host-9' is not a target of " + id)) << not_target.err;
  auto not_member = cli(0, {"logs", "d-NOSUCHDEP", "--host", "host-9"});
  EXPECT_EQ(not_member.exit_code, 2);
  EXPECT_TRUE(has(not_member.err, "host 'host-9' is not a member")) << not_member.err;
  auto unknown_dep = cli(0, {"logs", "d-NOSUCHDEP", "--host", "host-3"});
  EXPECT_EQ(unknown_dep.exit_code, 2);
  EXPECT_TRUE(has(unknown_dep.err, "host 'host-3'")) << unknown_dep.err;
  EXPECT_TRUE(has(unknown_dep.err, "d-NOSUCHDEP")) << unknown_dep.err;
  auto bad_event = cli(0, {"logs", id, "--host", "host-3", "--event", "Bogus"});
  EXPECT_EQ(bad_event.exit_code, 2);
  EXPECT_TRUE(has(bad_event.err, "'Bogus' is not a lifecycle event name")) << bad_event.err;
}

TEST_F(MeshLogsTest, AKilledHostGivesAClearErrorWithinTheTimeout) {
  const std::string id = deploy_logging_revision();
  ASSERT_FALSE(id.empty());
  nodes_[2]->kill_hard();

  // At once: host-3 is still alive in node 1's view, so the request goes out and times out
  // (5 s), or fails sooner when node 1 already declared it dead.
  const auto t0 = std::chrono::steady_clock::now();
  auto r = cli(0, {"logs", id, "--host", "host-3"});
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "host 'host-3'")) << r.err;
  EXPECT_TRUE(has(r.err, "did not answer within 5000 ms") || has(r.err, "is dead") ||
              has(r.err, "went down") || has(r.err, "cannot send"))
      << r.err;
  EXPECT_LT(took, 10s);

  // Once node 1 sees it dead (bounded by 30 s), the answer comes at once and says so.
  bool dead = false;
  for (int i = 0; i < 300 && !dead; ++i) {
    const json m = json::parse(cli(0, {"members", "-o", "json"}).out, nullptr, false);
    if (m.is_object()) {
      for (const auto& x : m["members"])
        dead = dead || (x["name"] == "host-3" && x["status"] == "dead");
    }
    if (!dead) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(dead) << "node 1 never saw host-3 dead";
  const auto t1 = std::chrono::steady_clock::now();
  auto again = cli(0, {"logs", id, "--host", "host-3"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(has(again.err, "host 'host-3' is dead")) << again.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t1, 3s);
}

}  // namespace
}  // namespace meshdeploy::test

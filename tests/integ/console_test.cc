// The web console (docs/console.md) as a person sees it, on a real mesh of 3 `meshdeploy node
// run` processes on loopback: Debian's headless Chromium, driven by playwright-core
// (tests/integ/console/drive.mjs, installed by scripts/setup), opens http://<api>/ui/ and reports
// what the page shows; this test checks it against the cluster's state. A deployment whose
// failing hook prints markup must show its log tail as text, a running deployment must reach its
// end on the page without a reload, and the page must stay within a phone's width. Screenshots
// go to <build>/test-artifacts/console.png and console-phone.png.
#include "tests/integ/mesh_fixture.h"

#include <iostream>

namespace meshdeploy::test {
namespace {

constexpr const char* kHostile =
    "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">";

class ConsoleTest : public MeshFixture {
 protected:
  int node_count() const override { return 3; }

  fs::path fail_file() const { return dir_ / "console_fail"; }
  fs::path hold_file() const { return dir_ / "console_hold"; }

  // A revision whose ValidateService prints a line, then fails printing markup on the hosts
  // whose install root is listed in fail_file(), and otherwise waits while hold_file() exists
  // (at most 60 s).
  fs::path make_console_revision() {
    const fs::path rev = dir_ / "console-rev";
    fs::create_directories(rev / "scripts");
    fs::create_directories(rev / "content");
    std::ofstream(rev / "content" / "index.html") << "hello\n";
    std::ofstream(rev / "appspec.yml")
        << "version: 0.0\nos: linux\nfiles:\n"
           "  - source: content\n    destination: /srv/console\nfile_exists_behavior: OVERWRITE\n"
           "hooks:\n"
           "  ValidateService:\n    - location: scripts/check.sh\n";
    std::ofstream(rev / "scripts" / "check.sh")
        << "#!/bin/sh\necho \"checking $MESHDEPLOY_INSTALL_ROOT\"\n"
        << "if grep -qx \"$MESHDEPLOY_INSTALL_ROOT\" " << fail_file() << " 2>/dev/null; then\n"
        << "  printf '%s\\n' '" << kHostile << "' 'console-test: failing on purpose'\n"
        << "  exit 3\nfi\n"
        << "i=0\nwhile [ -f " << hold_file() << " ] && [ $i -lt 600 ]; do sleep 0.1; "
        << "i=$((i+1)); done\necho released\n";
    fs::permissions(rev / "scripts" / "check.sh", fs::perms::owner_all, fs::perm_options::add);
    return rev;
  }

  std::string deploy_console(const std::string& group, const std::string& config, bool wait) {
    EXPECT_EQ(cli(0, {"group", "create", "--app", "web", "--name", group, "--tag", "role=web",
                      "--config", config})
                  .exit_code,
              0);
    std::vector<std::string> args = {
        "deploy", "--app", "web", "--group", group, "--source", (dir_ / "console-rev").string()};
    if (wait) args.push_back("--wait");
    auto r = cli(0, args);
    const std::string id = r.out.substr(0, r.out.find('\n'));
    EXPECT_FALSE(id.empty()) << r.out << r.err;
    return id;
  }
};

TEST_F(ConsoleTest, APersonSeesDeploymentsHostsLogTailsMembersAndRevisions) {
  const fs::path driver = source_path("tests/integ/console/drive.mjs");
  const fs::path chromium = "/usr/bin/chromium";
  // scripts/setup installs both; a missing one is a broken setup, not a reason to skip.
  ASSERT_TRUE(fs::exists(chromium)) << "no " << chromium << ": run scripts/setup";
  ASSERT_TRUE(fs::exists(source_path("tests/integ/console/node_modules/playwright-core")))
      << "playwright-core is not installed in tests/integ/console: run scripts/setup";
  make_console_revision();

  // A deployment that fails on two of the three hosts with markup in their logs.
  std::ofstream(fail_file()) << root(1).string() << "\n" << root(2).string() << "\n";
  const std::string failed_id = deploy_console("hostile", "OneAtATime", true);
  ASSERT_FALSE(failed_id.empty());
  const json failed = status_until(0, failed_id, settled);
  ASSERT_EQ(failed["status"], "Failed") << failed.dump(2);
  std::string failed_host;
  for (const auto& h : failed["hosts"]) {
    if (h["status"] == "Failed" && failed_host.empty()) failed_host = h["host"];
  }
  ASSERT_FALSE(failed_host.empty()) << failed.dump(2);
  fs::remove(fail_file());

  // A deployment held in ValidateService until the driver, watching its page, releases it.
  std::ofstream(hold_file()) << "hold\n";
  const std::string live_id = deploy_console("live", "AllAtOnce", false);
  ASSERT_FALSE(live_id.empty());
  const json running = status_until(
      0, live_id, [](const json& d) { return d["status"] == "InProgress"; }, 30s);
  ASSERT_EQ(running["status"], "InProgress") << running.dump(2);

  const fs::path artifacts = fs::path(meshdeploy_binary()).parent_path() / "test-artifacts";
  auto run = run_command(
      {"/usr/bin/env", "node", driver.string(), "--base", "http://" + nodes_[0]->api(), "--failed",
       failed_id, "--failed-host", failed_host, "--live", live_id, "--release",
       hold_file().string(), "--out", artifacts.string(), "--chromium", chromium.string()},
      {}, 200s);
  fs::remove(hold_file());
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  json seen = json::parse(run.out.substr(run.out.find('{')), nullptr, false);
  ASSERT_TRUE(seen.is_object()) << run.out << run.err;
  ASSERT_FALSE(seen.contains("error")) << seen["error"].get<std::string>() << "\n" << seen.dump(2);
  std::cout << "console screenshots: " << seen["screenshot"].get<std::string>() << " and "
            << seen["phoneScreenshot"].get<std::string>() << "\n";
  RecordProperty("screenshot", seen["screenshot"].get<std::string>());

  // The files and their headers.
  const json& hd = seen["headers"];
  EXPECT_EQ(hd["index"]["status"], 200);
  EXPECT_EQ(hd["index"]["type"], "text/html; charset=utf-8");
  EXPECT_EQ(hd["index"]["csp"].get<std::string>().rfind("default-src 'self';", 0), 0u)
      << hd.dump(2);
  EXPECT_EQ(hd["index"]["nosniff"], "nosniff");
  EXPECT_EQ(hd["index"]["cache"], "no-cache");
  EXPECT_EQ(hd["revalidated"]["status"], 304);
  EXPECT_EQ(hd["revalidated"]["body"], 0);
  EXPECT_EQ(hd["script"]["type"], "text/javascript; charset=utf-8");
  EXPECT_EQ(hd["missing"]["status"], 404);
  EXPECT_EQ(hd["traversal"]["status"], 404);
  EXPECT_EQ(hd["post"]["status"], 405);
  EXPECT_EQ(hd["post"]["allow"], "GET");
  EXPECT_EQ(hd["bare"]["status"], 301);

  // The running deployment ended on the page without a reload.
  EXPECT_EQ(seen["live"]["first"], "InProgress") << seen["live"].dump();
  EXPECT_EQ(seen["live"]["final"], "Succeeded") << seen["live"].dump();
  EXPECT_EQ(seen["live"]["navigations"], 0) << seen["live"].dump();
  EXPECT_EQ(seen["live"]["hostRows"], 3);

  // The list and its status filter.
  EXPECT_EQ(seen["list"]["status"], "Failed") << seen["list"].dump();
  EXPECT_NE(seen["list"]["rowText"].get<std::string>().find("hostile"), std::string::npos);
  EXPECT_EQ(seen["list"]["rows"], 2);
  EXPECT_EQ(seen["list"]["failedFilterIds"], json::array({failed_id}));
  EXPECT_EQ(seen["list"]["succeededFilterIds"], json::array({live_id}));

  // The failed deployment: every host with the status the API gives, and the failed host's log
  // tail as text (the markup shown, not run).
  const json& dep = seen["deployment"];
  EXPECT_EQ(dep["status"], "Failed");
  const json final_doc = status_until(0, failed_id, settled);
  ASSERT_EQ(dep["hosts"].size(), final_doc["hosts"].size()) << dep.dump(2);
  for (const auto& h : final_doc["hosts"]) {
    bool shown = false;
    for (const auto& s : dep["hosts"]) {
      if (s["host"] == h["host"]) shown = s["status"] == h["status"];
    }
    EXPECT_TRUE(shown) << h.dump() << " vs " << dep["hosts"].dump();
  }
  EXPECT_NE(dep["failureHeading"].get<std::string>().find(failed_host), std::string::npos);
  EXPECT_NE(dep["failureHeading"].get<std::string>().find("ValidateService"), std::string::npos);
  const std::string tail = dep["logTail"];
  EXPECT_NE(tail.find(kHostile), std::string::npos) << tail;
  EXPECT_NE(tail.find("console-test: failing on purpose"), std::string::npos) << tail;
  EXPECT_NE(dep["fullLog"].get<std::string>().find(kHostile), std::string::npos);
  EXPECT_EQ(dep["injectedElements"], 0);
  EXPECT_TRUE(dep["pwned"].is_null()) << dep["pwned"];
  EXPECT_TRUE(dep["pwnedAfterFullLog"].is_null()) << dep["pwnedAfterFullLog"];
  EXPECT_EQ(dep["pageWiderThanWindow"], false);

  // Members with health and tags; the revision of the application.
  ASSERT_EQ(seen["members"].size(), 3u) << seen["members"].dump();
  for (const auto& m : seen["members"]) {
    EXPECT_EQ(m["status"], "alive") << m.dump();
    EXPECT_EQ(m["tags"], json::array({"role=web"})) << m.dump();
  }
  ASSERT_EQ(seen["revisions"].size(), 1u) << seen["revisions"].dump();
  EXPECT_EQ(seen["revisions"][0]["app"], "web");
  // The fixture's revision and this test's one.
  EXPECT_GE(seen["revisions"][0]["count"], 1);

  // Phone width: nothing wider than the screen; the log tail readable.
  EXPECT_EQ(seen["phone"]["listWiderThanScreen"], false);
  EXPECT_EQ(seen["phone"]["deploymentWiderThanScreen"], false);
  EXPECT_EQ(seen["phone"]["logVisible"], true);

  // Nothing fetched from another origin, no script error, no policy violation.
  EXPECT_EQ(seen["outsideRequests"], json::array()) << seen["outsideRequests"].dump();
  EXPECT_EQ(seen["pageErrors"], json::array()) << seen["pageErrors"].dump();
  for (const auto& e : seen["consoleErrors"]) {
    EXPECT_EQ(e.get<std::string>().find("Content Security Policy"), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace meshdeploy::test

// The Debian package (scripts/packaging/cpack.cmake): builds it with cpack from this build
// directory, installs it with `dpkg --root` into a throwaway root (the machine's own dpkg
// database and /usr stay untouched), and checks the binary runs, the unit and the default config
// are in place and the default config passes `node check-config` once keys exist.
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <unistd.h>

namespace meshdeploy {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

test::command_result sh(const std::string& script,
                        const std::vector<std::pair<std::string, std::string>>& env = {}) {
  return test::run_command({"/bin/sh", "-c", script}, env, 120s);
}

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

TEST(PackageTest, DebInstallsIntoAThrowawayRootAndRuns) {
  for (const char* tool : {"cpack", "dpkg", "dpkg-deb", "dpkg-shlibdeps"}) {
    if (sh(std::string("command -v ") + tool).exit_code != 0) {
      GTEST_SKIP() << tool << " is not installed (apt-get install cmake dpkg-dev)";
    }
  }
  test::temp_dir dir("meshdeploy-package");
  const fs::path build = fs::path(test::meshdeploy_binary()).parent_path();
  auto built = sh("cd " + quote(build) + " && cpack -G DEB -B " + quote(dir / "out"));
  ASSERT_EQ(built.exit_code, 0) << built.out << built.err;
  auto found = sh("ls " + quote(dir / "out") + "/meshdeploy_*.deb");
  ASSERT_EQ(found.exit_code, 0) << found.err;
  const std::string deb = found.out.substr(0, found.out.find('\n'));

  // Control data: the config is a conffile (upgrades keep local edits); dependencies came
  // from the binary's shared libraries.
  auto conffiles = sh("dpkg-deb -I '" + deb + "' conffiles");
  EXPECT_EQ(conffiles.out, "/etc/meshdeploy/node.yaml\n") << conffiles.err;
  auto depends = sh("dpkg-deb -f '" + deb + "' Depends");
  EXPECT_NE(depends.out.find("libsodium"), std::string::npos) << depends.out;

  // dpkg -i into an empty root of our own: a dpkg database with nothing installed, so the
  // library dependencies (present on this machine, not in that root) are forced.
  const fs::path root = dir / "root";
  fs::create_directories(root / "var/lib/dpkg/updates");
  fs::create_directories(root / "var/lib/dpkg/info");
  test::write_file(root / "var/lib/dpkg/status", "");
  const std::string dpkg = "dpkg --root=" + quote(root) + " --force-depends --force-not-root " +
                           "--force-script-chrootless --log=/dev/null ";
  auto installed = sh(dpkg + "-i '" + deb + "'");
  ASSERT_EQ(installed.exit_code, 0) << installed.out << installed.err;
  auto listed = sh(dpkg + "-L meshdeploy");
  for (const char* f : {"/usr/bin/meshdeploy", "/lib/systemd/system/meshdeploy.service",
                        "/etc/meshdeploy/node.yaml", "/var/lib/meshdeploy",
                        "/usr/share/doc/meshdeploy/operations.md"}) {
    EXPECT_NE(listed.out.find(std::string(f) + "\n"), std::string::npos) << f << "\n" << listed.out;
    EXPECT_TRUE(fs::exists(root / fs::path(f).relative_path())) << f;
  }

  const std::string bin = (root / "usr/bin/meshdeploy").string();
  auto version = test::run_command({bin, "--version"}, {}, 20s);
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_EQ(version.out.rfind("meshdeploy ", 0), 0u) << version.out;

  const std::string unit = test::read_file(root / "lib/systemd/system/meshdeploy.service");
  EXPECT_NE(unit.find("ExecStart=/usr/bin/meshdeploy node run --config "
                      "/etc/meshdeploy/node.yaml\n"),
            std::string::npos);
  EXPECT_NE(unit.find("Restart=on-failure\n"), std::string::npos);

  // The shipped config parses; it names key files that do not exist yet, and says so.
  const fs::path config = root / "etc/meshdeploy/node.yaml";
  auto no_keys = test::run_command({bin, "node", "check-config", config.string()}, {}, 20s);
  EXPECT_EQ(no_keys.exit_code, 2) << no_keys.out << no_keys.err;
  EXPECT_NE(no_keys.err.find("keyring: cannot read /etc/meshdeploy/keyring.txt"), std::string::npos)
      << no_keys.err;
  // With the keys of a real cluster (the environment beats the file) it is valid.
  std::string why;
  ASSERT_TRUE(test::ensure_cluster_keys(dir / "cluster", &why)) << why;
  auto ok = test::run_command({bin, "node", "check-config", config.string()},
                              {{"MESHDEPLOY_NODE_KEYRING", (dir / "cluster/keyring.txt").string()},
                               {"MESHDEPLOY_NODE_ADMIN_PUB", (dir / "cluster/admin.pub").string()}},
                              20s);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find(config.string() + ": valid"), std::string::npos) << ok.out;

  auto purged = sh(dpkg + "--purge meshdeploy");
  EXPECT_EQ(purged.exit_code, 0) << purged.out << purged.err;
  EXPECT_FALSE(fs::exists(root / "usr/bin/meshdeploy"));
  EXPECT_FALSE(fs::exists(config));
}

}  // namespace
}  // namespace meshdeploy

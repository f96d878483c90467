#include "node/agent/permissions.h"

#include "node/agent/errc.h"
#include "node/agent/installer.h"
#include "tests/support/temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <grp.h>
#include <pwd.h>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <tuple>
#include <unistd.h>
#include <vector>

namespace meshdeploy::agent {
namespace {

namespace fs = std::filesystem;
using test::read_file;
using test::temp_dir;
using test::write_file;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// One decoded entry of a system.posix_acl_* attribute: (tag, id, perms).
// Tags as in <linux/posix_acl.h>: 1 user_obj, 2 user, 4 group_obj, 8 group,
// 16 mask, 32 other. Decoded here independently of the code under test.
using ace = std::tuple<int, std::uint32_t, int>;
constexpr std::uint32_t none = 0xffffffffu;

std::vector<ace> read_acl(const fs::path& p, const char* name) {
  std::vector<char> buf(4096);
  ssize_t n = ::getxattr(p.c_str(), name, buf.data(), buf.size());
  if (n < 4) return {};
  std::vector<ace> out;
  for (ssize_t off = 4; off + 8 <= n; off += 8) {
    std::uint16_t tag, perm;
    std::uint32_t id;
    std::memcpy(&tag, buf.data() + off, 2);
    std::memcpy(&perm, buf.data() + off + 2, 2);
    std::memcpy(&id, buf.data() + off + 4, 4);
    out.emplace_back(tag, id, perm);
  }
  return out;
}

uid_t nobody_uid() { return ::getpwnam("nobody")->pw_uid; }
gid_t nogroup_gid() { return ::getgrnam("nogroup")->gr_gid; }

// Can user nobody (no supplementary groups) open `p` with `flags`? Checked
// in a forked child, so the kernel's own permission check decides.
bool nobody_can_open(const fs::path& p, int flags) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(nogroup_gid()) != 0 ||
        ::setuid(nobody_uid()) != 0) {
      ::_exit(2);
    }
    int fd = ::open(p.c_str(), flags | O_CLOEXEC);
    ::_exit(fd >= 0 ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(GlobMatchTest, StarIsTheOnlyWildcard) {
  struct row {
    const char* pattern;
    const char* name;
    bool match;
  };
  const row rows[] = {
      {"*", "a", true},
      {"*", "", true},
      {"*.sh", "run.sh", true},
      {"*.sh", "run.py", false},
      {"*.sh", ".sh", true},
      {"a*b*c", "abxbc", true},
      {"a*b*c", "acb", false},
      {"a*b*c", "abcbc", true},
      {"", "", true},
      {"", "a", false},
      {"a", "", false},
      {"a?c", "abc", false},
      {"a?c", "a?c", true},
      {"[ab]", "a", false},
      {"**", "x", true},
      {".*", ".hidden", true},
      {"*", ".hidden", true},
      {"*x", "xxxx", true},
      {"*ab", "aab", true},
      {"index.html", "index.html", true},
      {"index.html", "index.htm", false},
  };
  for (const row& r : rows) {
    EXPECT_EQ(glob_match(r.pattern, r.name), r.match) << r.pattern << " vs " << r.name;
  }
}

TEST(GlobMatchTest, NameWithSlashNeverMatches) {
  EXPECT_FALSE(glob_match("*", "a/b"));
  EXPECT_FALSE(glob_match("a/b", "a/b"));
  EXPECT_FALSE(glob_match("**", "a/b"));
}

TEST(ParseAclEntryTest, AcceptsCodeDeployForms) {
  auto u = parse_acl_entry("u:alice:rw");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u.value().tag, acl_entry::kind::user);
  EXPECT_EQ(u.value().name, "alice");
  EXPECT_EQ(u.value().perms, 6u);
  EXPECT_FALSE(u.value().is_default);

  auto g = parse_acl_entry("group:ops:r-x");
  ASSERT_TRUE(g);
  EXPECT_EQ(g.value().tag, acl_entry::kind::group);
  EXPECT_EQ(g.value().perms, 5u);

  auto d = parse_acl_entry("d:u:bob:rwx");
  ASSERT_TRUE(d);
  EXPECT_TRUE(d.value().is_default);
  EXPECT_EQ(d.value().name, "bob");
  EXPECT_EQ(d.value().perms, 7u);

  auto dd = parse_acl_entry("default:g:ops:4");
  ASSERT_TRUE(dd);
  EXPECT_TRUE(dd.value().is_default);
  EXPECT_EQ(dd.value().tag, acl_entry::kind::group);
  EXPECT_EQ(dd.value().perms, 4u);

  auto bare = parse_acl_entry("alice:rw");  // no type: a user
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare.value().tag, acl_entry::kind::user);
  EXPECT_EQ(bare.value().name, "alice");

  auto mask = parse_acl_entry("m::rx");
  ASSERT_TRUE(mask);
  EXPECT_EQ(mask.value().tag, acl_entry::kind::mask);
  EXPECT_EQ(mask.value().perms, 5u);

  auto other = parse_acl_entry("o::r");
  ASSERT_TRUE(other);
  EXPECT_EQ(other.value().tag, acl_entry::kind::other);

  auto default_owner = parse_acl_entry("d:u::rwx");
  ASSERT_TRUE(default_owner);
  EXPECT_TRUE(default_owner.value().name.empty());
}

TEST(ParseAclEntryTest, RejectsMalformedEntriesQuotingThem) {
  for (const char* bad : {"u::rw", "g::r", "x:alice:rw", "u:alice:rwz", "m:foo:rw", "o:bar:r",
                          "d:d:u:x:rw", "rw", "a:b:c:d:e", "d:default:alice:rw", "u:alice:8"}) {
    auto r = parse_acl_entry(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, errc::permission_failed) << bad;
    EXPECT_THAT(r.error().message, HasSubstr(std::string("\"") + bad + "\"")) << bad;
  }
}

TEST(MergeSelinuxContextTest, ReplacesGivenFieldsAndKeepsTheRest) {
  selinux_context type_only{"", "httpd_sys_content_t", ""};
  EXPECT_EQ(merge_selinux_context("system_u:object_r:var_t:s0", type_only).value(),
            "system_u:object_r:httpd_sys_content_t:s0");
  selinux_context all{"unconfined_u", "httpd_sys_rw_content_t", "s0:c1,c2"};
  EXPECT_EQ(merge_selinux_context("system_u:object_r:var_t:s0", all).value(),
            "unconfined_u:object_r:httpd_sys_rw_content_t:s0:c1,c2");
  // A range with ':' in it is kept whole; a context without range stays so.
  EXPECT_EQ(merge_selinux_context("u:r:t:s0-s0:c0.c1023", type_only).value(),
            "u:r:httpd_sys_content_t:s0-s0:c0.c1023");
  EXPECT_EQ(merge_selinux_context("u:r:t", type_only).value(), "u:r:httpd_sys_content_t");
  EXPECT_FALSE(merge_selinux_context("garbage", type_only));
}

// Installs a small revision for real, then applies rules to it.
//   /opt/app/            created by the install
//     index.html run.sh secret.txt
//     sub/ sub/deep.sh sub/page.html
//     link -> index.html
class PermissionsTest : public ::testing::Test {
 protected:
  PermissionsTest() : tmp_("permissions-test") {
    write_file(tmp_ / "rev/app/index.html", "i", 0644);
    write_file(tmp_ / "rev/app/run.sh", "#!/bin/sh\n", 0755);
    write_file(tmp_ / "rev/app/secret.txt", "s", 0644);
    write_file(tmp_ / "rev/app/sub/deep.sh", "#!/bin/sh\n", 0755);
    write_file(tmp_ / "rev/app/sub/page.html", "p", 0644);
    fs::create_symlink("index.html", tmp_ / "rev/app/link");
    ::chmod((tmp_ / "rev/app/sub").c_str(), 0755);
    fs::create_directories(root());
    appspec s;
    s.files = {{"app", "/opt/app", 1}};
    auto r = install_files(s, tmp_ / "rev", root(), file_exists_behavior::disallow);
    EXPECT_TRUE(r) << r.error().message;
    if (r) installed_ = r.value();
    // A file that is below the rules' objects but not installed by us.
    write_file(at("/opt/app/user.txt"), "u", 0644);
  }

  fs::path root() const { return tmp_ / "root"; }
  fs::path at(std::string_view host) const { return real_path(root(), host); }

  static permission_rule rule(std::string object, int line = 10) {
    permission_rule r;
    r.object = std::move(object);
    r.line = line;
    return r;
  }

  result<void> apply(std::vector<permission_rule> rules) {
    appspec s;
    s.file_name = "appspec.yml";
    s.permissions = std::move(rules);
    return apply_permissions(s, installed_, root(),
                             [this](std::string_view l) { log_.emplace_back(l); });
  }

  static struct stat stat_of(const fs::path& p) {
    struct stat st;
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st;
  }
  static unsigned mode_of(const fs::path& p) { return stat_of(p).st_mode & 07777; }

  temp_dir tmp_;
  install_manifest installed_;
  std::vector<std::string> log_;
};

TEST_F(PermissionsTest, ModeWithTypeFileChangesFilesOnly) {
  auto r = rule("/opt/app");
  r.mode = 0600;
  r.types = {object_type::file};
  auto res = apply({r});
  ASSERT_TRUE(res) << res.error().message;

  EXPECT_EQ(mode_of(at("/opt/app/index.html")), 0600u);
  EXPECT_EQ(mode_of(at("/opt/app/run.sh")), 0600u);
  EXPECT_EQ(mode_of(at("/opt/app/sub/page.html")), 0600u);
  EXPECT_EQ(mode_of(at("/opt/app/sub")), 0755u);
  EXPECT_EQ(mode_of(at("/opt/app")), 0755u);
}

TEST_F(PermissionsTest, ModeWithTypeDirectoryIncludesTheInstalledObjectItself) {
  auto r = rule("/opt/app");
  r.mode = 0750;
  r.types = {object_type::directory};
  ASSERT_TRUE(apply({r}));

  EXPECT_EQ(mode_of(at("/opt/app")), 0750u);
  EXPECT_EQ(mode_of(at("/opt/app/sub")), 0750u);
  EXPECT_EQ(mode_of(at("/opt/app/index.html")), 0644u);
  EXPECT_EQ(mode_of(at("/opt")), 0755u);  // above the object: untouched
}

TEST_F(PermissionsTest, PatternOtherThanDoubleStarMatchesImmediateChildrenOnly) {
  auto r = rule("/opt/app");
  r.pattern = "*.sh";
  r.mode = 0700;
  ASSERT_TRUE(apply({r}));

  EXPECT_EQ(mode_of(at("/opt/app/run.sh")), 0700u);
  EXPECT_EQ(mode_of(at("/opt/app/sub/deep.sh")), 0755u);  // not an immediate child
  EXPECT_EQ(mode_of(at("/opt/app/index.html")), 0644u);
  EXPECT_EQ(mode_of(at("/opt/app")), 0755u);  // the object is not selected by a pattern
}

TEST_F(PermissionsTest, DoubleStarMatchesEverythingBelow) {
  auto r = rule("/opt/app");
  r.pattern = "**";
  r.mode = 0700;
  r.types = {object_type::file};
  ASSERT_TRUE(apply({r}));
  EXPECT_EQ(mode_of(at("/opt/app/run.sh")), 0700u);
  EXPECT_EQ(mode_of(at("/opt/app/sub/deep.sh")), 0700u);
}

TEST_F(PermissionsTest, ExceptExcludesMatchingChildren) {
  auto r = rule("/opt/app");
  r.mode = 0600;
  r.types = {object_type::file};
  r.except = {"secret*", "run.sh"};
  ASSERT_TRUE(apply({r}));

  EXPECT_EQ(mode_of(at("/opt/app/secret.txt")), 0644u);
  EXPECT_EQ(mode_of(at("/opt/app/run.sh")), 0755u);
  EXPECT_EQ(mode_of(at("/opt/app/index.html")), 0600u);
}

TEST_F(PermissionsTest, FilesNotInstalledByThisDeploymentAreNotTouched) {
  write_file(at("/etc/other.conf"), "c", 0644);
  auto below = rule("/opt/app");
  below.mode = 0600;
  auto elsewhere = rule("/etc");
  elsewhere.mode = 0600;
  auto missing = rule("/does/not/exist");
  missing.mode = 0600;
  ASSERT_TRUE(apply({below, elsewhere, missing}));

  EXPECT_EQ(mode_of(at("/opt/app/user.txt")), 0644u);
  EXPECT_EQ(mode_of(at("/etc/other.conf")), 0644u);
  EXPECT_EQ(mode_of(at("/opt/app/index.html")), 0600u);
}

TEST_F(PermissionsTest, FileObjectGetsTheRule) {
  auto r = rule("/opt/app/index.html");
  r.mode = 0444;
  ASSERT_TRUE(apply({r}));
  EXPECT_EQ(mode_of(at("/opt/app/index.html")), 0444u);
  EXPECT_EQ(mode_of(at("/opt/app/secret.txt")), 0644u);
}

TEST_F(PermissionsTest, OwnerAndGroupAreSetByName) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown needs root";
  auto r = rule("/opt/app");
  r.owner = "nobody";
  r.group = "nogroup";
  ASSERT_TRUE(apply({r}));

  for (const char* p : {"/opt/app", "/opt/app/index.html", "/opt/app/sub/deep.sh"}) {
    EXPECT_EQ(stat_of(at(p)).st_uid, nobody_uid()) << p;
    EXPECT_EQ(stat_of(at(p)).st_gid, nogroup_gid()) << p;
  }
  // The symlink itself changed owner; its target is the installed file anyway.
  EXPECT_EQ(stat_of(at("/opt/app/link")).st_uid, nobody_uid());
  EXPECT_EQ(stat_of(at("/opt/app/user.txt")).st_uid, 0u);
}

TEST_F(PermissionsTest, SetuidModeSurvivesOwnerChange) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown needs root";
  auto r = rule("/opt/app/run.sh");
  r.owner = "nobody";
  r.mode = 04755;
  ASSERT_TRUE(apply({r}));
  EXPECT_EQ(mode_of(at("/opt/app/run.sh")), 04755u);
  EXPECT_EQ(stat_of(at("/opt/app/run.sh")).st_uid, nobody_uid());
}

TEST_F(PermissionsTest, UnknownUserFailsNamingLineAndNameBeforeAnyChange) {
  auto first = rule("/opt/app", 20);
  first.mode = 0600;
  auto second = rule("/opt/app", 27);
  second.owner = "no-such-user-md";
  auto res = apply({first, second});
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, errc::permission_failed);
  EXPECT_THAT(res.error().message, HasSubstr("appspec.yml:27: permissions[1].owner"));
  EXPECT_THAT(res.error().message, HasSubstr("no-such-user-md"));
  EXPECT_EQ(mode_of(at("/opt/app/index.html")), 0644u);  // the first rule was not applied
}

TEST_F(PermissionsTest, UnknownGroupAndAclNameFail) {
  auto g = rule("/opt/app", 5);
  g.group = "no-such-group-md";
  auto res = apply({g});
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, errc::permission_failed);
  EXPECT_THAT(res.error().message, HasSubstr("appspec.yml:5: permissions[0].group"));
  EXPECT_THAT(res.error().message, HasSubstr("no-such-group-md"));

  auto a = rule("/opt/app", 6);
  a.acls = {"u:no-such-user-md:r"};
  auto acl_res = apply({a});
  ASSERT_FALSE(acl_res);
  EXPECT_EQ(acl_res.error().code, errc::permission_failed);
  EXPECT_THAT(acl_res.error().message, HasSubstr("permissions[0].acls"));
  EXPECT_THAT(acl_res.error().message, HasSubstr("no-such-user-md"));
}

TEST_F(PermissionsTest, AclGrantsNamedUserAccessTheModeDoesNot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  // Let nobody reach the files.
  for (fs::path p = at("/opt/app"); p != tmp_.path().parent_path(); p = p.parent_path()) {
    ::chmod(p.c_str(), 0755);
  }
  auto r = rule("/opt/app/secret.txt");
  r.mode = 0600;
  r.acls = {"u:nobody:r"};
  auto control = rule("/opt/app/index.html");
  control.mode = 0600;
  auto res = apply({r, control});
  ASSERT_TRUE(res) << res.error().message;

  EXPECT_THAT(read_acl(at("/opt/app/secret.txt"), "system.posix_acl_access"),
              UnorderedElementsAre(ace{1, none, 6}, ace{2, nobody_uid(), 4}, ace{4, none, 0},
                                   ace{16, none, 4}, ace{32, none, 0}));
  // The kernel shows the mask in the group bits, as ls -l does.
  EXPECT_EQ(mode_of(at("/opt/app/secret.txt")), 0640u);
  EXPECT_TRUE(nobody_can_open(at("/opt/app/secret.txt"), O_RDONLY));
  EXPECT_FALSE(nobody_can_open(at("/opt/app/secret.txt"), O_WRONLY));
  EXPECT_FALSE(nobody_can_open(at("/opt/app/index.html"), O_RDONLY));
}

TEST_F(PermissionsTest, AclWithGroupAndExplicitMask) {
  auto r = rule("/opt/app/index.html");
  r.mode = 0640;
  r.acls = {"g:nogroup:rw", "m::r"};
  ASSERT_TRUE(apply({r}));
  EXPECT_THAT(read_acl(at("/opt/app/index.html"), "system.posix_acl_access"),
              UnorderedElementsAre(ace{1, none, 6}, ace{4, none, 4}, ace{8, nogroup_gid(), 6},
                                   ace{16, none, 4}, ace{32, none, 0}));
}

TEST_F(PermissionsTest, DefaultAclGoesOnDirectoriesAndIsInherited) {
  auto r = rule("/opt/app");
  r.acls = {"d:u:nobody:rwx"};
  ASSERT_TRUE(apply({r}));

  EXPECT_THAT(read_acl(at("/opt/app/sub"), "system.posix_acl_default"),
              UnorderedElementsAre(ace{1, none, 7}, ace{2, nobody_uid(), 7}, ace{4, none, 5},
                                   ace{16, none, 7}, ace{32, none, 5}));
  EXPECT_TRUE(read_acl(at("/opt/app/index.html"), "system.posix_acl_default").empty());
  EXPECT_THAT(log_, Contains(HasSubstr("directories only")));
  // The kernel accepted it as a real default ACL: a new file inherits it.
  write_file(at("/opt/app/sub/new.txt"), "n", 0644);
  EXPECT_THAT(read_acl(at("/opt/app/sub/new.txt"), "system.posix_acl_access"),
              Contains(ace{2, nobody_uid(), 7}));
}

TEST_F(PermissionsTest, LaterRuleWinsAndSymlinksOnlyGetOwnership) {
  auto all = rule("/opt/app", 3);
  all.mode = 0600;
  all.types = {object_type::file};
  auto link = rule("/opt/app", 4);
  link.pattern = "link";
  link.mode = 0640;
  auto html = rule("/opt/app", 5);
  html.pattern = "*.html";
  html.mode = 0644;
  ASSERT_TRUE(apply({all, link, html}));

  EXPECT_EQ(mode_of(at("/opt/app/index.html")), 0644u);  // rule 5 after rule 3
  EXPECT_EQ(mode_of(at("/opt/app/secret.txt")), 0600u);
  EXPECT_THAT(log_, Contains(HasSubstr("symlinks such as /opt/app/link only get owner")));
}

TEST_F(PermissionsTest, SelinuxContextIsSkippedWithALogLineWhenSelinuxIsOff) {
  if (fs::exists("/sys/fs/selinux/enforce")) GTEST_SKIP() << "SELinux is enabled here";
  auto r = rule("/opt/app", 8);
  r.context = selinux_context{"", "httpd_sys_content_t", ""};
  auto res = apply({r});
  ASSERT_TRUE(res) << res.error().message;
  EXPECT_THAT(log_, Contains(HasSubstr("SELinux is not enabled")));
}

TEST_F(PermissionsTest, EntryRemovedBeforePermissionsIsAnIoError) {
  fs::remove(at("/opt/app/index.html"));
  auto r = rule("/opt/app");
  r.mode = 0600;
  auto res = apply({r});
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, errc::io_error);
  EXPECT_THAT(res.error().message, HasSubstr("/opt/app/index.html"));
}

}  // namespace
}  // namespace meshdeploy::agent

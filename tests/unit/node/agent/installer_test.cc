#include "node/agent/installer.h"

#include "node/agent/errc.h"
#include "tests/support/temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <grp.h>
#include <ostream>
#include <pwd.h>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace meshdeploy::agent {

void PrintTo(const installed_entry& e, std::ostream* os) {
  *os << "{" << e.path << (e.directory ? ", dir}" : "}");
}

namespace {

namespace fs = std::filesystem;
using test::read_file;
using test::temp_dir;
using test::write_file;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A revision directory and an install root, plus a small vocabulary to build
// appspecs and inspect what landed where.
class InstallerTest : public ::testing::Test {
 protected:
  InstallerTest() : tmp_("installer-test") {
    fs::create_directories(revision());
    fs::create_directories(root());
  }

  fs::path revision() const { return tmp_ / "revision"; }
  fs::path root() const { return tmp_ / "root"; }
  fs::path at(std::string_view host) const { return real_path(root(), host); }

  void add(const std::string& rel, std::string_view content, unsigned mode = 0644) {
    write_file(revision() / rel, content, mode);
  }

  appspec spec(std::vector<file_mapping> files) {
    appspec s;
    s.version = "0.0";
    s.os = "linux";
    s.file_name = "appspec.yml";
    s.files = std::move(files);
    return s;
  }

  result<install_manifest> install(const appspec& s,
                                   file_exists_behavior b = file_exists_behavior::disallow) {
    return install_files(s, revision(), root(), b,
                         [this](std::string_view l) { log_.emplace_back(l); });
  }

  static std::vector<std::string> paths(const install_manifest& m) {
    std::vector<std::string> out;
    for (const auto& e : m) out.push_back(e.path);
    return out;
  }

  static unsigned mode_of(const fs::path& p) {
    struct stat st;
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }

  static bool exists(const fs::path& p) {
    struct stat st;
    return ::lstat(p.c_str(), &st) == 0;
  }

  // Every name under `dir`, recursively (to see that nothing stray appeared).
  static std::vector<std::string> tree(const fs::path& dir) {
    std::vector<std::string> out;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
         ++it) {
      out.push_back(it->path().lexically_relative(dir).generic_string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  temp_dir tmp_;
  std::vector<std::string> log_;
};

// Runs `fn` in a forked child as user/group nobody and returns the string it
// produced (through a pipe). REQUIRES: running as root (callers skip
// otherwise).
std::string as_nobody(const std::function<std::string()>& fn) {
  struct passwd* pw = ::getpwnam("nobody");
  if (pw == nullptr) return "no user nobody";
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
      out = "cannot become nobody";
    } else {
      out = fn();
    }
    ssize_t ignored = ::write(fds[1], out.data(), out.size());
    (void)ignored;
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    got.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return got;
}

TEST(NormalizeHostPathTest, CollapsesSlashesAndDots) {
  EXPECT_EQ(normalize_host_path("/").value(), "/");
  EXPECT_EQ(normalize_host_path("//").value(), "/");
  EXPECT_EQ(normalize_host_path("/var//www/./html/").value(), "/var/www/html");
  EXPECT_EQ(normalize_host_path("/a").value(), "/a");
}

TEST(NormalizeHostPathTest, RejectsRelativeEmptyAndDotDot) {
  for (const char* bad : {"", "var/www", "/var/../etc", "/..", "/a/b/.."}) {
    auto r = normalize_host_path(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, errc::invalid_argument) << bad;
    EXPECT_THAT(r.error().message, HasSubstr(std::string("\"") + bad + "\"")) << bad;
  }
}

TEST_F(InstallerTest, CopiesFileSourceIntoDestinationDirectoryUnderItsOwnName) {
  add("app/index.html", "<h1>hi</h1>", 0640);
  const struct timespec past[2] = {{1000000000, 123456789}, {1000000000, 123456789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (revision() / "app/index.html").c_str(), past, 0), 0);
  struct stat src_st;
  ASSERT_EQ(::stat((revision() / "app/index.html").c_str(), &src_st), 0);

  auto r = install(spec({{"app/index.html", "/var/www", 3}}));
  ASSERT_TRUE(r) << r.error().message;

  EXPECT_EQ(read_file(at("/var/www/index.html")), "<h1>hi</h1>");
  EXPECT_EQ(mode_of(at("/var/www/index.html")), 0640u);
  struct stat dst_st;
  ASSERT_EQ(::stat(at("/var/www/index.html").c_str(), &dst_st), 0);
  EXPECT_EQ(dst_st.st_mtim.tv_sec, src_st.st_mtim.tv_sec);
  EXPECT_EQ(dst_st.st_mtim.tv_nsec, src_st.st_mtim.tv_nsec);
  // Missing ancestors are created 0755 and recorded before the file.
  EXPECT_EQ(mode_of(at("/var")), 0755u);
  EXPECT_EQ(mode_of(at("/var/www")), 0755u);
  EXPECT_THAT(r.value(),
              ElementsAre(installed_entry{"/var", true}, installed_entry{"/var/www", true},
                          installed_entry{"/var/www/index.html", false}));
  // No temporary files are left behind.
  EXPECT_THAT(tree(root()), ElementsAre("var", "var/www", "var/www/index.html"));
}

TEST_F(InstallerTest, CopiesDirectorySourceRecursivelyKeepingModes) {
  add("app/a.txt", "a");
  add("app/run.sh", "#!/bin/sh\n", 0755);
  add("app/sub/b.txt", "b", 0600);
  add("app/sub/deeper/c.txt", "c");
  ASSERT_EQ(::chmod((revision() / "app/sub").c_str(), 0750), 0);

  auto r = install(spec({{"app", "/opt/app", 1}}));
  ASSERT_TRUE(r) << r.error().message;

  EXPECT_EQ(read_file(at("/opt/app/a.txt")), "a");
  EXPECT_EQ(read_file(at("/opt/app/sub/b.txt")), "b");
  EXPECT_EQ(read_file(at("/opt/app/sub/deeper/c.txt")), "c");
  EXPECT_FALSE(exists(at("/opt/app/app")));  // contents, not the directory itself
  EXPECT_EQ(mode_of(at("/opt/app/run.sh")), 0755u);
  EXPECT_EQ(mode_of(at("/opt/app/sub/b.txt")), 0600u);
  EXPECT_EQ(mode_of(at("/opt/app/sub")), 0750u);
  EXPECT_THAT(paths(r.value()), ElementsAre("/opt", "/opt/app", "/opt/app/a.txt", "/opt/app/run.sh",
                                            "/opt/app/sub", "/opt/app/sub/b.txt",
                                            "/opt/app/sub/deeper", "/opt/app/sub/deeper/c.txt"));
  EXPECT_TRUE(r.value()[4].directory);
  EXPECT_FALSE(r.value()[3].directory);
}

TEST_F(InstallerTest, RootSourceCopiesWholeRevisionIncludingTheAppspec) {
  add("appspec.yml", "version: 0.0\nos: linux\n");
  add("web/index.html", "x");

  auto r = install(spec({{"/", "/srv/site", 1}}));
  ASSERT_TRUE(r) << r.error().message;

  EXPECT_EQ(read_file(at("/srv/site/appspec.yml")), "version: 0.0\nos: linux\n");
  EXPECT_EQ(read_file(at("/srv/site/web/index.html")), "x");
  EXPECT_THAT(paths(r.value()), ElementsAre("/srv", "/srv/site", "/srv/site/appspec.yml",
                                            "/srv/site/web", "/srv/site/web/index.html"));
}

TEST_F(InstallerTest, ExistingDirectoriesAreUsedButNotRecorded) {
  fs::create_directories(at("/opt"));
  ASSERT_EQ(::chmod(at("/opt").c_str(), 0711), 0);
  add("app/a.txt", "a");

  auto r = install(spec({{"app", "/opt/app", 1}}));
  ASSERT_TRUE(r) << r.error().message;

  EXPECT_THAT(paths(r.value()), ElementsAre("/opt/app", "/opt/app/a.txt"));
  EXPECT_EQ(mode_of(at("/opt")), 0711u);  // untouched
}

TEST_F(InstallerTest, DisallowConflictIsReportedBeforeAnythingIsWritten) {
  add("app/a.txt", "new a");
  add("app/b.txt", "new b");
  add("app/z/c.txt", "new c");
  write_file(at("/opt/app/b.txt"), "user's b");

  auto r = install(spec({{"app", "/opt/app", 4}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::install_conflict);
  EXPECT_THAT(r.error().message, HasSubstr("/opt/app/b.txt"));
  EXPECT_THAT(r.error().message, HasSubstr("OVERWRITE"));
  EXPECT_THAT(r.error().message, HasSubstr("RETAIN"));
  EXPECT_THAT(r.error().message, HasSubstr("remove them"));
  // Nothing changed: a.txt and z/ were not created, b.txt is intact.
  EXPECT_THAT(tree(root()), ElementsAre("opt", "opt/app", "opt/app/b.txt"));
  EXPECT_EQ(read_file(at("/opt/app/b.txt")), "user's b");
}

TEST_F(InstallerTest, DisallowListsEveryConflictingFile) {
  add("one.txt", "1");
  add("two.txt", "2");
  write_file(at("/etc/one.txt"), "x");
  write_file(at("/etc/two.txt"), "y");

  auto r = install(spec({{"one.txt", "/etc", 1}, {"two.txt", "/etc", 2}}));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("/etc/one.txt"));
  EXPECT_THAT(r.error().message, HasSubstr("/etc/two.txt"));
}

TEST_F(InstallerTest, OverwriteReplacesExistingFileAndRecordsIt) {
  add("app/b.txt", "new b", 0600);
  write_file(at("/opt/app/b.txt"), "user's b", 0644);

  auto r = install(spec({{"app", "/opt/app", 1}}), file_exists_behavior::overwrite);
  ASSERT_TRUE(r) << r.error().message;

  EXPECT_EQ(read_file(at("/opt/app/b.txt")), "new b");
  EXPECT_EQ(mode_of(at("/opt/app/b.txt")), 0600u);
  EXPECT_THAT(r.value(), ElementsAre(installed_entry{"/opt/app/b.txt", false}));
  EXPECT_THAT(log_, testing::Contains(HasSubstr("replaced the existing /opt/app/b.txt")));
}

TEST_F(InstallerTest, OverwriteReplacesAnExistingSymlinkNotItsTarget) {
  add("conf.txt", "new");
  write_file(tmp_ / "outside.txt", "outside");
  fs::create_directories(at("/etc"));
  fs::create_symlink(tmp_ / "outside.txt", at("/etc/conf.txt"));

  auto r = install(spec({{"conf.txt", "/etc", 1}}), file_exists_behavior::overwrite);
  ASSERT_TRUE(r) << r.error().message;

  EXPECT_FALSE(fs::is_symlink(at("/etc/conf.txt")));
  EXPECT_EQ(read_file(at("/etc/conf.txt")), "new");
  EXPECT_EQ(read_file(tmp_ / "outside.txt"), "outside");
}

TEST_F(InstallerTest, RetainKeepsExistingFileAndDoesNotRecordIt) {
  add("app/a.txt", "new a");
  add("app/b.txt", "new b");
  write_file(at("/opt/app/b.txt"), "user's b");

  auto r = install(spec({{"app", "/opt/app", 1}}), file_exists_behavior::retain);
  ASSERT_TRUE(r) << r.error().message;

  EXPECT_EQ(read_file(at("/opt/app/b.txt")), "user's b");
  EXPECT_EQ(read_file(at("/opt/app/a.txt")), "new a");
  EXPECT_THAT(paths(r.value()), ElementsAre("/opt/app/a.txt"));
  EXPECT_THAT(log_, testing::Contains(HasSubstr("kept the existing /opt/app/b.txt")));
}

TEST_F(InstallerTest, FileWhereDirectoryIsNeededConflictsEvenWithOverwrite) {
  add("app/sub/x.txt", "x");
  write_file(at("/opt/app/sub"), "a file, not a directory");

  auto r = install(spec({{"app", "/opt/app", 1}}), file_exists_behavior::overwrite);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::install_conflict);
  EXPECT_THAT(r.error().message,
              HasSubstr("/opt/app/sub: exists on the host and is not a directory"));
  EXPECT_EQ(read_file(at("/opt/app/sub")), "a file, not a directory");
}

TEST_F(InstallerTest, DirectoryWhereFileGoesConflictsWithOverwrite) {
  add("app/thing", "file");
  fs::create_directories(at("/opt/app/thing"));

  auto r = install(spec({{"app", "/opt/app", 1}}), file_exists_behavior::overwrite);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::install_conflict);
  EXPECT_THAT(r.error().message, HasSubstr("/opt/app/thing: is a directory on the host"));
  EXPECT_TRUE(fs::is_directory(at("/opt/app/thing")));
}

TEST_F(InstallerTest, TwoMappingsInstallingTheSamePathConflict) {
  add("a/x.txt", "from a");
  add("b/x.txt", "from b");

  auto r = install(spec({{"a", "/opt", 3}, {"b", "/opt", 5}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::install_conflict);
  EXPECT_THAT(r.error().message, HasSubstr("/opt/x.txt: installed twice"));
  EXPECT_THAT(r.error().message, HasSubstr("line 3"));
  EXPECT_THAT(r.error().message, HasSubstr("line 5"));
  EXPECT_FALSE(exists(at("/opt")));
}

TEST_F(InstallerTest, MissingSourceNamesTheAppspecLine) {
  auto r = install(spec({{"nope/file.txt", "/opt", 9}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::appspec_invalid);
  EXPECT_THAT(r.error().message, HasSubstr("appspec.yml:9: files[0].source"));
  EXPECT_THAT(r.error().message, HasSubstr("nope/file.txt"));
}

TEST_F(InstallerTest, DotDotInSourceOrDestinationIsRefused) {
  add("a.txt", "a");
  auto dest = install(spec({{"a.txt", "/opt/../etc", 2}}));
  ASSERT_FALSE(dest);
  EXPECT_EQ(dest.error().code, errc::appspec_invalid);
  EXPECT_THAT(dest.error().message, HasSubstr("files[0].destination"));

  auto relative = install(spec({{"a.txt", "opt", 2}}));
  ASSERT_FALSE(relative);
  EXPECT_EQ(relative.error().code, errc::appspec_invalid);

  auto src = install(spec({{"../revision/a.txt", "/opt", 2}}));
  ASSERT_FALSE(src);
  EXPECT_EQ(src.error().code, errc::appspec_invalid);
  EXPECT_THAT(src.error().message, HasSubstr("files[0].source"));
  EXPECT_TRUE(tree(root()).empty());
}

TEST_F(InstallerTest, SourceReachingOutsideRevisionThroughSymlinkIsRefused) {
  write_file(tmp_ / "secret/key", "k");
  fs::create_directory_symlink(tmp_ / "secret", revision() / "escape");

  auto r = install(spec({{"escape/key", "/opt", 1}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::appspec_invalid);
  EXPECT_THAT(r.error().message, HasSubstr("outside the revision"));
  EXPECT_TRUE(tree(root()).empty());
}

TEST_F(InstallerTest, HostSymlinkLeadingOutsideInstallRootIsRefused) {
  fs::create_directories(tmp_ / "elsewhere");
  fs::create_directory_symlink(tmp_ / "elsewhere", at("/opt"));
  add("a.txt", "a");

  auto r = install(spec({{"a.txt", "/opt/app", 1}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::install_conflict);
  EXPECT_THAT(r.error().message, HasSubstr("outside the install root"));
  EXPECT_TRUE(fs::is_empty(tmp_ / "elsewhere"));
}

TEST_F(InstallerTest, HostSymlinkToDirectoryInsideRootIsFollowed) {
  fs::create_directories(at("/srv/www"));
  fs::create_directories(at("/var"));
  fs::create_directory_symlink("../srv/www", at("/var/www"));
  add("index.html", "i");

  auto r = install(spec({{"index.html", "/var/www", 1}}));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(read_file(at("/srv/www/index.html")), "i");
  EXPECT_THAT(paths(r.value()), ElementsAre("/var/www/index.html"));
}

TEST_F(InstallerTest, SymlinksAreRecreatedAsSymlinks) {
  add("app/a.txt", "a");
  add("app/real/inner.txt", "inner");
  fs::create_symlink("a.txt", revision() / "app/link");
  fs::create_directory_symlink("real", revision() / "app/dirlink");
  fs::create_symlink("missing-target", revision() / "app/dangling");

  auto r = install(spec({{"app", "/opt/app", 1}}));
  ASSERT_TRUE(r) << r.error().message;

  ASSERT_TRUE(fs::is_symlink(at("/opt/app/link")));
  EXPECT_EQ(fs::read_symlink(at("/opt/app/link")), "a.txt");
  EXPECT_EQ(read_file(at("/opt/app/link")), "a");
  ASSERT_TRUE(fs::is_symlink(at("/opt/app/dirlink")));
  EXPECT_EQ(fs::read_symlink(at("/opt/app/dirlink")), "real");
  ASSERT_TRUE(fs::is_symlink(at("/opt/app/dangling")));
  EXPECT_THAT(paths(r.value()), testing::Contains("/opt/app/dirlink"));
  EXPECT_THAT(paths(r.value()), Not(testing::Contains("/opt/app/dirlink/inner.txt")));

  // Removing them removes the links, not what they point to.
  ASSERT_TRUE(remove_installed(r.value(), root()));
  EXPECT_FALSE(exists(at("/opt")));
  EXPECT_EQ(read_file(revision() / "app/a.txt"), "a");
}

TEST_F(InstallerTest, SymlinkFileSourceIsCopiedAsASymlink) {
  add("target.txt", "t");
  fs::create_symlink("target.txt", revision() / "current");

  auto r = install(spec({{"current", "/opt", 1}}));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(fs::is_symlink(at("/opt/current")));
  EXPECT_EQ(fs::read_symlink(at("/opt/current")), "target.txt");
}

TEST_F(InstallerTest, SpecialFileInRevisionFailsWithNothingChanged) {
  add("app/a.txt", "a");
  ASSERT_EQ(::mkfifo((revision() / "app/pipe").c_str(), 0644), 0);

  auto r = install(spec({{"app", "/opt/app", 1}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_revision);
  EXPECT_THAT(r.error().message, HasSubstr("app/pipe"));
  EXPECT_TRUE(tree(root()).empty());
}

TEST_F(InstallerTest, ReadOnlyRevisionDirectoryKeepsItsModeAfterItsContentIsCopied) {
  add("app/ro/file.txt", "f");
  ASSERT_EQ(::chmod((revision() / "app/ro").c_str(), 0555), 0);

  auto r = install(spec({{"app", "/opt", 1}}));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(read_file(at("/opt/ro/file.txt")), "f");
  EXPECT_EQ(mode_of(at("/opt/ro")), 0555u);
}

TEST_F(InstallerTest, InstallRootThatIsMissingIsInvalidArgument) {
  add("a.txt", "a");
  auto r = install_files(spec({{"a.txt", "/opt", 1}}), revision(), tmp_ / "no-root",
                         file_exists_behavior::disallow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  EXPECT_THAT(r.error().message, HasSubstr("no-root"));
}

TEST_F(InstallerTest, RemoveInstalledKeepsNonEmptyDirectoriesAndRemovesEmptyOnes) {
  add("app/a.txt", "a");
  add("app/logs/.keep", "");
  auto r = install(spec({{"app", "/opt/app", 1}}));
  ASSERT_TRUE(r) << r.error().message;
  write_file(at("/opt/app/logs/user.log"), "written by the app");

  std::vector<std::string> lines;
  auto removed =
      remove_installed(r.value(), root(), [&](std::string_view l) { lines.emplace_back(l); });
  ASSERT_TRUE(removed) << removed.error().message;

  // logs/ holds a file we did not install, so it and its ancestors stay.
  EXPECT_THAT(tree(root()), ElementsAre("opt", "opt/app", "opt/app/logs", "opt/app/logs/user.log"));
  EXPECT_THAT(lines, testing::Contains(HasSubstr("kept the directory /opt/app/logs")));
}

TEST_F(InstallerTest, RemoveInstalledRemovesEverythingItCreatedWhenNothingWasAdded) {
  add("app/a.txt", "a");
  add("app/sub/b.txt", "b");
  fs::create_directories(at("/opt"));
  auto r = install(spec({{"app", "/opt/app/v1", 1}}));
  ASSERT_TRUE(r) << r.error().message;

  ASSERT_TRUE(remove_installed(r.value(), root()));
  // /opt existed before and stays; everything created below it is gone.
  EXPECT_THAT(tree(root()), ElementsAre("opt"));
}

TEST_F(InstallerTest, RemoveInstalledWorksInReverseOrder) {
  // A manifest in creation order: the directory must be removed after its
  // content, so processing in forward order would leave it behind.
  fs::create_directories(at("/d/e"));
  write_file(at("/d/e/f"), "f");
  install_manifest m{{"/d", true}, {"/d/e", true}, {"/d/e/f", false}};
  ASSERT_TRUE(remove_installed(m, root()));
  EXPECT_TRUE(tree(root()).empty());
}

TEST_F(InstallerTest, RemoveInstalledAcceptsMissingEntriesAndLeavesChangedTypes) {
  fs::create_directories(at("/was-file"));   // we installed a file here; now a directory
  write_file(at("/was-dir"), "now a file");  // we created a directory here; now a file
  install_manifest m{{"/gone", true}, {"/gone/x", false}, {"/was-file", false}, {"/was-dir", true}};
  auto r = remove_installed(m, root());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(fs::is_directory(at("/was-file")));
  EXPECT_EQ(read_file(at("/was-dir")), "now a file");
}

TEST_F(InstallerTest, RemoveInstalledRefusesPathsOutsideTheRoot) {
  write_file(tmp_ / "victim", "v");
  fs::create_directory_symlink(tmp_.path(), at("/up"));
  install_manifest m{{"/../victim", false}, {"/up/victim", false}};
  auto r = remove_installed(m, root());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::io_error);
  EXPECT_THAT(r.error().message, HasSubstr("/../victim"));
  EXPECT_THAT(r.error().message, HasSubstr("/up/victim"));
  EXPECT_EQ(read_file(tmp_ / "victim"), "v");
}

TEST_F(InstallerTest, RemoveInstalledReportsRealFailuresByPathAndGoesOn) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  ASSERT_EQ(::chmod(tmp_.path().c_str(), 0755), 0);
  write_file(at("/locked/file"), "mine");
  write_file(at("/open/file"), "mine too");
  ASSERT_EQ(::chmod(at("/locked").c_str(), 0755), 0);  // root-owned: nobody cannot unlink in it
  ASSERT_EQ(::chown(at("/open").c_str(), 65534, 65534), 0);
  const install_manifest m{{"/locked/file", false}, {"/open/file", false}};

  const fs::path r = root();
  std::string got = as_nobody([&] {
    auto res = remove_installed(m, r);
    if (res) return std::string("ok");
    return std::string(res.error().code == errc::io_error ? "io_error: " : "other: ") +
           res.error().message;
  });
  EXPECT_THAT(got, HasSubstr("io_error: "));
  EXPECT_THAT(got, HasSubstr("/locked/file: Permission denied"));
  EXPECT_THAT(got, Not(HasSubstr("/open/file")));
  EXPECT_TRUE(exists(at("/locked/file")));
  EXPECT_FALSE(exists(at("/open/file")));  // attempted after the failure
}

TEST_F(InstallerTest, FailureHalfWayRemovesWhatThisInstallCreated) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  ASSERT_EQ(::chmod(tmp_.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(revision().c_str(), 0755), 0);
  add("first/a.txt", "a");
  add("second/b.txt", "b");
  ASSERT_EQ(::chmod((revision() / "first").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((revision() / "second").c_str(), 0755), 0);
  ASSERT_EQ(::chown(root().c_str(), 65534, 65534), 0);
  fs::create_directories(at("/locked"));  // root-owned 0755: nobody cannot write here
  ASSERT_EQ(::chmod(at("/locked").c_str(), 0755), 0);
  const appspec s = spec({{"first", "/opt/app", 1}, {"second", "/locked", 2}});

  const fs::path rev = revision(), r = root();
  std::string got = as_nobody([&] {
    auto res = install_files(s, rev, r, file_exists_behavior::disallow);
    if (res) return std::string("ok");
    return std::string(res.error().code == errc::io_error ? "io_error: " : "other: ") +
           res.error().message;
  });
  EXPECT_THAT(got, HasSubstr("io_error: install failed at /locked/b.txt"));
  EXPECT_THAT(got, HasSubstr("removed the 3 entries this install had created"));
  EXPECT_THAT(tree(root()), ElementsAre("locked"));
}

TEST_F(InstallerTest, RedeployRemovesFilesOnlyInThePreviousRevision) {
  // Deployment A.
  add("a-only.txt", "a");
  add("common.txt", "from A");
  add("dir-a/x.txt", "x");
  auto a = install(spec({{"/", "/srv/app", 1}}));
  ASSERT_TRUE(a) << a.error().message;

  // Deployment B: a new revision with an overlapping file; DISALLOW works
  // because A's files are removed first.
  fs::remove_all(revision());
  add("b-only.txt", "b");
  add("common.txt", "from B");
  ASSERT_TRUE(remove_installed(a.value(), root()));
  auto b = install(spec({{"/", "/srv/app", 1}}));
  ASSERT_TRUE(b) << b.error().message;

  EXPECT_THAT(tree(root()),
              ElementsAre("srv", "srv/app", "srv/app/b-only.txt", "srv/app/common.txt"));
  EXPECT_EQ(read_file(at("/srv/app/common.txt")), "from B");

  // Rolling back to A is the same operation.
  fs::remove_all(revision());
  add("a-only.txt", "a");
  add("common.txt", "from A");
  ASSERT_TRUE(remove_installed(b.value(), root()));
  auto back = install(spec({{"/", "/srv/app", 1}}));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(read_file(at("/srv/app/common.txt")), "from A");
  EXPECT_FALSE(exists(at("/srv/app/b-only.txt")));
}

TEST_F(InstallerTest, RedeployOverAFileTheUserAddedStillConflicts) {
  add("common.txt", "from A");
  auto a = install(spec({{"/", "/srv", 1}}));
  ASSERT_TRUE(a) << a.error().message;
  write_file(at("/srv/extra.txt"), "user");

  fs::remove_all(revision());
  add("extra.txt", "from B");
  ASSERT_TRUE(remove_installed(a.value(), root()));
  auto b = install(spec({{"/", "/srv", 1}}));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, errc::install_conflict);
  EXPECT_THAT(b.error().message, HasSubstr("/srv/extra.txt"));
}

TEST_F(InstallerTest, LargeFileIsCopiedExactly) {
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) % 251);
  add("big.bin", big);
  auto r = install(spec({{"big.bin", "/data", 1}}));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(read_file(at("/data/big.bin")), big);
}

}  // namespace
}  // namespace meshdeploy::agent

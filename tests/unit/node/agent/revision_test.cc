#include "node/agent/revision.h"

#include "node/agent/archive.h"
#include "node/agent/errc.h"
#include "tests/support/temp_dir.h"

#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <clocale>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace meshdeploy::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// One file or directory or symlink of a test tree.
struct node {
  std::string path;
  enum { file, dir, link } type;
  std::string content;  // file content or link target
  unsigned mode = 0644;
};

// A tree that exercises ordering ("a" < "a.txt" < "a/b"), exec bits, long
// and non-UTF-8 names, an empty directory and symlinks.
std::vector<node> sample_tree() {
  return {
      {"appspec.yml", node::file, "version: 0.0\nos: linux\n"},
      {"scripts", node::dir, "", 0755},
      {"scripts/start.sh", node::file, "#!/bin/sh\necho start\n", 0755},
      {"a", node::dir, "", 0750},
      {"a/b", node::file, "b"},
      {"a.txt", node::file, "a.txt", 0600},
      {"z", node::dir, "", 0755},
      {"z/deep", node::dir, "", 0755},
      {"z/deep/" + std::string(150, 'L'), node::file, "long name"},
      {"caf\xc3\xa9", node::file, "utf-8 name"},
      {"raw\xff\xfe", node::file, "not utf-8"},
      {"logs", node::dir, "", 0700},
      {"current", node::link, "scripts/start.sh"},
      {"z/deep/up", node::link, "../../a"},
  };
}

void make_tree(const fs::path& root, std::vector<node> nodes, bool reverse,
               std::chrono::seconds age) {
  fs::create_directories(root);
  // Directories must exist before their children; otherwise order as asked.
  std::stable_sort(nodes.begin(), nodes.end(), [](const node& a, const node& b) {
    return (a.type == node::dir) > (b.type == node::dir);
  });
  if (reverse) {
    auto first_non_dir =
        std::find_if(nodes.begin(), nodes.end(), [](const node& n) { return n.type != node::dir; });
    std::reverse(first_non_dir, nodes.end());
  }
  for (const auto& n : nodes) {
    const fs::path p = root / n.path;
    switch (n.type) {
      case node::dir:
        fs::create_directories(p);
        fs::permissions(p, static_cast<fs::perms>(n.mode));
        break;
      case node::file:
        test::write_file(p, n.content, n.mode);
        break;
      case node::link:
        fs::create_symlink(n.content, p);
        break;
    }
  }
  const auto when = fs::file_time_type::clock::now() - age;
  for (const auto& n : nodes) {
    if (n.type != node::link) fs::last_write_time(root / n.path, when);
  }
}

std::string hash_of(const fs::path& file) {
  auto h = hash_file(file);
  EXPECT_TRUE(h) << h.error().message;
  return h ? h.value() : "";
}

enum class kind { tgz, zip };

void write_bundle(const fs::path& out, kind k) {
  archive* a = archive_write_new();
  if (k == kind::zip) {
    ASSERT_EQ(archive_write_set_format_zip(a), ARCHIVE_OK);
  } else {
    ASSERT_EQ(archive_write_set_format_pax(a), ARCHIVE_OK);
    ASSERT_EQ(archive_write_add_filter_gzip(a), ARCHIVE_OK);
  }
  ASSERT_EQ(archive_write_open_filename(a, out.c_str()), ARCHIVE_OK);
  for (auto [name, content] :
       {std::pair{"appspec.yml", "version: 0.0\nos: linux\n"}, {"scripts/run.sh", "#!/bin/sh\n"}}) {
    archive_entry* e = archive_entry_new();
    archive_entry_copy_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0755);
    archive_entry_set_size(e, static_cast<la_int64_t>(std::strlen(content)));
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK);
    archive_write_data(a, content, std::strlen(content));
    archive_entry_free(e);
  }
  ASSERT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class RevisionTest : public ::testing::Test {
 protected:
  test::temp_dir root_{"revision-test"};
};

TEST_F(RevisionTest, HashFileMatchesKnownBlake2bVectors) {
  test::write_file(root_ / "empty", "");
  EXPECT_EQ(hash_of(root_ / "empty"),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  test::write_file(root_ / "abc", "abc");
  EXPECT_EQ(hash_of(root_ / "abc"),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

TEST_F(RevisionTest, HashFileOfALargeFileMatchesOneShotHash) {
  std::string data(300 * 1024 + 7, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 % 251);
  test::write_file(root_ / "big", data);
  ASSERT_GE(sodium_init(), 0);
  unsigned char digest[32];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size(), nullptr, 0);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  EXPECT_EQ(hash_of(root_ / "big"), hex);
}

TEST_F(RevisionTest, HashFileFailsOnMissingFileAndDirectory) {
  auto missing = hash_file(root_ / "missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, make_error_code(errc::io_error));
  EXPECT_THAT(missing.error().message, HasSubstr("missing"));
  auto dir = hash_file(root_.path());
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().code, make_error_code(errc::io_error));
}

TEST_F(RevisionTest, PackIsByteIdenticalWhateverCreationOrderAndMtimes) {
  make_tree(root_ / "one", sample_tree(), false, std::chrono::hours(1));
  make_tree(root_ / "two", sample_tree(), true, std::chrono::hours(24 * 400));
  ASSERT_TRUE(pack_directory(root_ / "one", root_ / "one.tar"));
  ASSERT_TRUE(pack_directory(root_ / "two", root_ / "two.tar"));
  EXPECT_EQ(hash_of(root_ / "one.tar"), hash_of(root_ / "two.tar"));
  EXPECT_EQ(test::read_file(root_ / "one.tar"), test::read_file(root_ / "two.tar"));
}

TEST_F(RevisionTest, PackIsIdenticalFromAnotherProcessAndLocale) {
  std::vector<node> ascii_only;
  for (const auto& n : sample_tree()) {
    if (n.path.find_first_of("\xc3\xff") == std::string::npos) ascii_only.push_back(n);
  }
  for (const auto& [name, tree] : {std::pair{"mixed", sample_tree()}, {"ascii", ascii_only}}) {
    SCOPED_TRACE(name);
    const fs::path dir = root_ / name;
    make_tree(dir, tree, false, std::chrono::hours(1));
    ASSERT_TRUE(pack_directory(dir, dir.string() + "-parent.tar"));
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      // A different pid and a UTF-8 locale must not change a single byte.
      std::setlocale(LC_ALL, "C.UTF-8");
      ::_exit(pack_directory(dir, dir.string() + "-child.tar") ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(hash_of(dir.string() + "-parent.tar"), hash_of(dir.string() + "-child.tar"));
  }
}

TEST_F(RevisionTest, PackChangesWithOneByteOrOneModeBit) {
  make_tree(root_ / "tree", sample_tree(), false, std::chrono::hours(1));
  ASSERT_TRUE(pack_directory(root_ / "tree", root_ / "a.tar"));
  test::write_file(root_ / "tree/scripts/start.sh", "#!/bin/sh\necho staRt\n", 0755);
  ASSERT_TRUE(pack_directory(root_ / "tree", root_ / "b.tar"));
  ::chmod((root_ / "tree/scripts/start.sh").c_str(), 0754);
  ASSERT_TRUE(pack_directory(root_ / "tree", root_ / "c.tar"));
  const std::string a = hash_of(root_ / "a.tar");
  const std::string b = hash_of(root_ / "b.tar");
  const std::string c = hash_of(root_ / "c.tar");
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
}

TEST_F(RevisionTest, PackedEntriesAreSortedWithZeroMtimeAndOwners) {
  make_tree(root_ / "tree", sample_tree(), true, std::chrono::hours(1));
  ASSERT_TRUE(pack_directory(root_ / "tree", root_ / "out.tar"));
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_filename(a, (root_ / "out.tar").c_str(), 10240), ARCHIVE_OK);
  std::vector<std::string> names;
  archive_entry* e = nullptr;
  for (int guard = 0; guard < 100 && archive_read_next_header(a, &e) == ARCHIVE_OK; ++guard) {
    std::string name = archive_entry_pathname(e);
    if (!name.empty() && name.back() == '/') name.pop_back();
    names.push_back(name);
    EXPECT_EQ(archive_entry_mtime(e), 0) << name;
    EXPECT_EQ(archive_entry_uid(e), 0) << name;
    EXPECT_EQ(archive_entry_gid(e), 0) << name;
    const char* uname = archive_entry_uname(e);
    const char* gname = archive_entry_gname(e);
    EXPECT_STREQ(uname ? uname : "", "") << name;
    EXPECT_STREQ(gname ? gname : "", "") << name;
  }
  archive_read_free(a);
  std::vector<std::string> expected;
  for (const auto& n : sample_tree()) expected.push_back(n.path);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(names, expected);
}

TEST_F(RevisionTest, PackedTreeExtractsBackWithModesAndLinks) {
  make_tree(root_ / "tree", sample_tree(), false, std::chrono::hours(1));
  ASSERT_TRUE(pack_directory(root_ / "tree", root_ / "out.tar"));
  fs::create_directory(root_ / "back");
  auto r = extract_archive(root_ / "out.tar", root_ / "back");
  ASSERT_TRUE(r) << r.error().message;
  for (const auto& n : sample_tree()) {
    SCOPED_TRACE(n.path);
    const fs::path p = root_ / "back" / n.path;
    struct stat st {};
    ASSERT_EQ(::lstat(p.c_str(), &st), 0);
    switch (n.type) {
      case node::file:
        EXPECT_EQ(test::read_file(p), n.content);
        EXPECT_EQ(st.st_mode & 07777, n.mode);
        break;
      case node::dir:
        EXPECT_TRUE(S_ISDIR(st.st_mode));
        EXPECT_EQ(st.st_mode & 07777, n.mode);
        break;
      case node::link:
        EXPECT_EQ(fs::read_symlink(p).string(), n.content);
        break;
    }
  }
}

TEST_F(RevisionTest, PackRefusesSpecialFiles) {
  make_tree(root_ / "tree", sample_tree(), false, std::chrono::hours(1));
  ASSERT_EQ(::mkfifo((root_ / "tree/z/pipe").c_str(), 0644), 0);
  fs::create_directory(root_ / "out");
  auto r = pack_directory(root_ / "tree", root_ / "out/x.tar");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::archive_unsafe));
  EXPECT_THAT(r.error().message, HasSubstr("z/pipe"));
  EXPECT_TRUE(fs::is_empty(root_ / "out"));  // no tar, no temporary
}

TEST_F(RevisionTest, PackRefusesSymlinksLeavingTheDirectory) {
  const std::vector<std::vector<node>> cases = {
      {{"up", node::link, "../outside"}},
      {{"abs", node::link, "/etc/passwd"}},
      {{"d", node::dir, "", 0755}, {"d/b", node::link, ".."}, {"x", node::link, "d/b/.."}},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const fs::path tree = root_ / ("tree" + std::to_string(i));
    make_tree(tree, cases[i], false, std::chrono::hours(1));
    auto r = pack_directory(tree, root_ / "x.tar");
    ASSERT_FALSE(r) << i;
    EXPECT_EQ(r.error().code, make_error_code(errc::archive_unsafe));
    EXPECT_THAT(r.error().message, HasSubstr(cases[i].back().path));
    EXPECT_FALSE(fs::exists(root_ / "x.tar"));
  }
}

TEST_F(RevisionTest, PackRefusesANonDirectory) {
  test::write_file(root_ / "file", "x");
  EXPECT_EQ(pack_directory(root_ / "file", root_ / "x.tar").error().code,
            make_error_code(errc::invalid_argument));
}

TEST_F(RevisionTest, PrepareRevisionPacksADirectory) {
  make_tree(root_ / "src", sample_tree(), false, std::chrono::hours(1));
  auto r = prepare_revision(root_ / "src", root_ / "work");
  ASSERT_TRUE(r) << r.error().message;
  const revision_bundle& b = r.value();
  EXPECT_TRUE(is_revision_id(b.id));
  EXPECT_EQ(b.format, bundle_format::tar);
  EXPECT_EQ(b.archive, root_ / "work" / (b.id + ".tar"));
  EXPECT_EQ(hash_of(b.archive), b.id);
  EXPECT_EQ(b.size, fs::file_size(b.archive));
  EXPECT_EQ(names_in(root_ / "work"), std::vector<std::string>{b.id + ".tar"});

  // Same tree, other mtimes: same revision.
  make_tree(root_ / "src2", sample_tree(), true, std::chrono::hours(5));
  auto again = prepare_revision(root_ / "src2", root_ / "work");
  ASSERT_TRUE(again);
  EXPECT_EQ(again.value().id, b.id);
  EXPECT_EQ(names_in(root_ / "work"), std::vector<std::string>{b.id + ".tar"});
}

TEST_F(RevisionTest, PrepareRevisionCopiesZipAndTgzDetectedByContent) {
  for (auto [k, name, format] : {std::tuple{kind::zip, "bundle.bin", bundle_format::zip},
                                 {kind::tgz, "misnamed.zip", bundle_format::tgz}}) {
    SCOPED_TRACE(name);
    const fs::path src = root_ / name;
    write_bundle(src, k);
    auto r = prepare_revision(src, root_ / "work");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r.value().format, format);
    EXPECT_EQ(r.value().id, hash_of(src));
    EXPECT_EQ(r.value().archive.filename(), r.value().id + "." + std::string(to_string(format)));
    EXPECT_EQ(test::read_file(r.value().archive), test::read_file(src));
    EXPECT_EQ(r.value().size, fs::file_size(src));
  }
  EXPECT_EQ(names_in(root_ / "work").size(), 2u);
}

TEST_F(RevisionTest, PrepareRevisionRejectsGarbageMissingAndSpecialSources) {
  test::write_file(root_ / "notes.txt", "just some text, no archive here\n");
  auto garbage = prepare_revision(root_ / "notes.txt", root_ / "work");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code, make_error_code(errc::archive_unreadable));
  EXPECT_THAT(garbage.error().message, HasSubstr("notes.txt"));
  EXPECT_TRUE(fs::is_empty(root_ / "work"));  // the temporary copy is gone

  auto missing = prepare_revision(root_ / "nope", root_ / "work");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, make_error_code(errc::bad_revision));
  EXPECT_THAT(missing.error().message, HasSubstr("nope"));

  ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0644), 0);
  auto fifo = prepare_revision(root_ / "fifo", root_ / "work");
  ASSERT_FALSE(fifo);
  EXPECT_EQ(fifo.error().code, make_error_code(errc::bad_revision));
  EXPECT_THAT(fifo.error().message, HasSubstr("fifo"));
}

TEST_F(RevisionTest, PrepareRevisionOfAnUnsafeDirectoryLeavesNothing) {
  make_tree(root_ / "src", {{"up", node::link, "../../etc"}}, false, std::chrono::hours(1));
  auto r = prepare_revision(root_ / "src", root_ / "work");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::archive_unsafe));
  EXPECT_THAT(r.error().message, HasSubstr("src"));
  EXPECT_TRUE(fs::is_empty(root_ / "work"));
}

TEST(RevisionIdTest, AcceptsOnly64LowercaseHex) {
  EXPECT_TRUE(is_revision_id("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"));
  EXPECT_FALSE(is_revision_id("0E5751C026E543B2E8AB2EB06099DAA1D1E5DF47778F7787FAAB45CDF12FE3A8"));
  EXPECT_FALSE(is_revision_id("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a"));
  EXPECT_FALSE(is_revision_id("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8a"));
  EXPECT_FALSE(is_revision_id("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3ag"));
  EXPECT_FALSE(is_revision_id(""));
  EXPECT_FALSE(is_revision_id("../../../../etc/passwd"));
}

}  // namespace
}  // namespace meshdeploy::agent

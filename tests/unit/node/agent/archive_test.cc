#include "node/agent/archive.h"

#include "node/agent/errc.h"
#include "tests/support/temp_dir.h"

#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace meshdeploy::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

enum class kind { pax, tgz, zip, zip_stored };

// Writes an archive entry by entry with libarchive's writer, so each hostile
// case below is spelled out explicitly.
class archive_builder {
 public:
  archive_builder(const fs::path& out, kind k) : a_(archive_write_new()) {
    if (k == kind::zip || k == kind::zip_stored) {
      check(archive_write_set_format_zip(a_));
      check(k == kind::zip ? archive_write_zip_set_compression_deflate(a_)
                           : archive_write_zip_set_compression_store(a_));
    } else {
      check(archive_write_set_format_pax(a_));
      if (k == kind::tgz) check(archive_write_add_filter_gzip(a_));
    }
    check(archive_write_open_filename(a_, out.c_str()));
  }
  ~archive_builder() {
    if (!closed_) archive_write_close(a_);
    archive_write_free(a_);
  }
  archive_builder(const archive_builder&) = delete;
  archive_builder& operator=(const archive_builder&) = delete;

  archive_builder& file(const std::string& path, std::string_view content, unsigned mode = 0644) {
    archive_entry* e = begin(path, AE_IFREG, mode);
    archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
    check(archive_write_header(a_, e));
    if (!content.empty()) {
      EXPECT_EQ(archive_write_data(a_, content.data(), content.size()),
                static_cast<la_ssize_t>(content.size()));
    }
    archive_entry_free(e);
    return *this;
  }
  // A file of `size` zero bytes, written in chunks (compresses to almost nothing).
  archive_builder& zeros(const std::string& path, std::uint64_t size) {
    archive_entry* e = begin(path, AE_IFREG, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(size));
    check(archive_write_header(a_, e));
    const std::string chunk(1 << 16, '\0');
    for (std::uint64_t left = size; left > 0;) {
      const std::size_t n = left < chunk.size() ? static_cast<std::size_t>(left) : chunk.size();
      EXPECT_EQ(archive_write_data(a_, chunk.data(), n), static_cast<la_ssize_t>(n));
      left -= n;
    }
    archive_entry_free(e);
    return *this;
  }
  archive_builder& dir(const std::string& path, unsigned mode = 0755) {
    return simple(path, AE_IFDIR, mode);
  }
  archive_builder& symlink(const std::string& path, const std::string& target) {
    archive_entry* e = begin(path, AE_IFLNK, 0777);
    archive_entry_copy_symlink(e, target.c_str());
    check(archive_write_header(a_, e));
    archive_entry_free(e);
    return *this;
  }
  archive_builder& hardlink(const std::string& path, const std::string& target) {
    archive_entry* e = begin(path, AE_IFREG, 0644);
    archive_entry_copy_hardlink(e, target.c_str());
    archive_entry_set_size(e, 0);
    check(archive_write_header(a_, e));
    archive_entry_free(e);
    return *this;
  }
  archive_builder& special(const std::string& path, unsigned filetype) {
    archive_entry* e = begin(path, filetype, 0666);
    archive_entry_set_rdev(e, makedev(1, 3));  // /dev/null's numbers
    check(archive_write_header(a_, e));
    archive_entry_free(e);
    return *this;
  }
  void close() {
    check(archive_write_close(a_));
    closed_ = true;
  }

 private:
  archive_entry* begin(const std::string& path, unsigned filetype, unsigned mode) {
    archive_entry* e = archive_entry_new();
    archive_entry_copy_pathname(e, path.c_str());
    archive_entry_set_filetype(e, filetype);
    archive_entry_set_perm(e, mode);
    archive_entry_set_mtime(e, 1700000000, 0);
    return e;
  }
  archive_builder& simple(const std::string& path, unsigned filetype, unsigned mode) {
    archive_entry* e = begin(path, filetype, mode);
    check(archive_write_header(a_, e));
    archive_entry_free(e);
    return *this;
  }
  void check(int r) {
    EXPECT_EQ(r, ARCHIVE_OK) << (archive_error_string(a_) ? archive_error_string(a_) : "");
  }

  archive* a_;
  bool closed_ = false;
};

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

// The destination sits three levels below the scratch root, so every "..",
// "a/../../evil" and "x -> ../.." case below would land inside the root where
// the test can see it.
class ArchiveTest : public ::testing::Test {
 protected:
  ArchiveTest() {
    fs::create_directories(dest_);
    outside_marker_ = "/tmp/meshdeploy-archive-test-evil-" + std::to_string(::getpid());
    etc_marker_ = "/etc/meshdeploy-archive-test-evil-" + std::to_string(::getpid());
  }
  ~ArchiveTest() override {
    std::error_code ec;
    fs::remove(outside_marker_, ec);
    fs::remove(etc_marker_, ec);
  }

  // Every path under the scratch root, relative to it.
  std::set<std::string> everything() const {
    std::set<std::string> out;
    for (auto it = fs::recursive_directory_iterator(root_.path()); it != fs::end(it); ++it) {
      out.insert(fs::relative(it->path(), root_.path()).string());
    }
    return out;
  }

  // Asserts `r` failed with `code`, naming `entry`, and that nothing was
  // written anywhere but the (now empty again) destination.
  // `why`, when given, pins which check refused it.
  void expect_refused(const result<void>& r, errc code, const std::string& entry,
                      const std::string& why = "") {
    ASSERT_FALSE(r) << "extraction unexpectedly succeeded";
    EXPECT_EQ(r.error().code, make_error_code(code)) << r.error().message;
    EXPECT_THAT(r.error().message, HasSubstr(entry));
    EXPECT_THAT(r.error().message, HasSubstr(why));
    EXPECT_THAT(r.error().message, HasSubstr(bundle_.string()));
    const std::set<std::string> expected{"bundle", "x", "x/y", "x/y/dest"};
    EXPECT_EQ(everything(), expected);
    EXPECT_TRUE(fs::is_empty(dest_));
    EXPECT_FALSE(fs::exists(fs::symlink_status(outside_marker_)));
    EXPECT_FALSE(fs::exists(fs::symlink_status(etc_marker_)));
  }

  result<void> extract(const extract_limits& limits = {}) {
    return extract_archive(bundle_, dest_, limits);
  }

  // A few harmless entries first, so a refusal happens mid-way and the
  // destination must be cleaned up.
  static void prelude(archive_builder& b) {
    b.file("appspec.yml", "version: 0.0\nos: linux\n")
        .file("scripts/start.sh", "#!/bin/sh\n", 0755);
  }

  test::temp_dir root_{"archive-test"};
  fs::path bundle_ = root_ / "bundle";
  fs::path dest_ = root_ / "x" / "y" / "dest";
  std::string outside_marker_;
  std::string etc_marker_;
};

TEST(BundleFormatTest, NamesRoundTrip) {
  for (auto f : {bundle_format::tar, bundle_format::tgz, bundle_format::zip}) {
    EXPECT_EQ(parse_bundle_format(to_string(f)), f);
  }
  EXPECT_EQ(to_string(bundle_format::tgz), "tgz");
  EXPECT_EQ(parse_bundle_format("tar.gz"), bundle_format::tgz);
  EXPECT_EQ(parse_bundle_format("TAR"), std::nullopt);
  EXPECT_EQ(parse_bundle_format("rar"), std::nullopt);
  EXPECT_EQ(parse_bundle_format(""), std::nullopt);
}

TEST(PathHelpersTest, SplitDropsEmptyAndDotAndRejectsDotDot) {
  EXPECT_EQ(split_relative_path("a//./b/"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(split_relative_path("./"), std::vector<std::string>{});
  EXPECT_EQ(split_relative_path("/etc/passwd"), std::nullopt);
  EXPECT_EQ(split_relative_path("a/../b"), std::nullopt);
  EXPECT_EQ(split_relative_path(".."), std::nullopt);
  EXPECT_EQ(split_relative_path("..a/b.."), (std::vector<std::string>{"..a", "b.."}));
}

TEST(PathHelpersTest, ResolvesLinkTargetsAgainstTheLinkDirectory) {
  const std::vector<std::string> link{"a", "b", "l"};
  EXPECT_EQ(resolve_link_target(link, "../c"), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(resolve_link_target(link, "../../c"), (std::vector<std::string>{"c"}));
  EXPECT_EQ(resolve_link_target(link, "../../../c"), std::nullopt);
  EXPECT_EQ(resolve_link_target(link, "/etc"), std::nullopt);
  EXPECT_EQ(resolve_link_target(link, ""), std::nullopt);
  // Climbing out and back in still leaves the root on the way.
  EXPECT_EQ(resolve_link_target({"l"}, "../dest/x"), std::nullopt);
}

TEST(PathHelpersTest, FindsLinkChainsThatEscapeOrLoop) {
  EXPECT_EQ(find_escaping_link({{"d/b", ".."}, {"x", "d/b/.."}}), "x");
  EXPECT_EQ(find_escaping_link({{"a", "b"}, {"b", "a"}}), "a");
  EXPECT_EQ(find_escaping_link({{"d/b", ".."}, {"x", "d/b/c"}, {"y", "x"}}), std::nullopt);
  EXPECT_EQ(find_escaping_link({}), std::nullopt);
}

TEST_F(ArchiveTest, ExtractsValidBundlesOfEachFormatKeepingExecBits) {
  for (kind k : {kind::pax, kind::tgz, kind::zip}) {
    SCOPED_TRACE(static_cast<int>(k));
    {
      archive_builder b(bundle_, k);
      b.dir("scripts/", 0750)
          .file("appspec.yml", "version: 0.0\nos: linux\n", 0644)
          .file("scripts/start.sh", "#!/bin/sh\necho hi\n", 0755)
          .file("deep/er/file.txt", "nested")
          .file("empty", "")
          .symlink("current", "scripts/start.sh");
      b.close();
    }
    ASSERT_TRUE(extract()) << extract().error().message;
    EXPECT_EQ(test::read_file(dest_ / "appspec.yml"), "version: 0.0\nos: linux\n");
    EXPECT_EQ(test::read_file(dest_ / "scripts/start.sh"), "#!/bin/sh\necho hi\n");
    EXPECT_EQ(mode_of(dest_ / "scripts/start.sh"), 0755u);
    EXPECT_EQ(mode_of(dest_ / "appspec.yml"), 0644u);
    EXPECT_EQ(mode_of(dest_ / "scripts"), 0750u);
    EXPECT_EQ(mode_of(dest_ / "deep"), 0755u);  // implied by a file's path
    EXPECT_EQ(test::read_file(dest_ / "deep/er/file.txt"), "nested");
    EXPECT_TRUE(fs::is_regular_file(dest_ / "empty"));
    EXPECT_EQ(fs::read_symlink(dest_ / "current"), "scripts/start.sh");
    for (const auto& e : fs::directory_iterator(dest_)) fs::remove_all(e.path());
  }
}

TEST_F(ArchiveTest, StripsSetuidSetgidAndStickyBits) {
  {
    archive_builder b(bundle_, kind::pax);
    b.file("suid", "x", 04755).file("sgid", "x", 02711).dir("sticky", 01777);
    b.close();
  }
  ASSERT_TRUE(extract());
  EXPECT_EQ(mode_of(dest_ / "suid"), 0755u);
  EXPECT_EQ(mode_of(dest_ / "sgid"), 0711u);
  EXPECT_EQ(mode_of(dest_ / "sticky"), 0777u);
}

TEST_F(ArchiveTest, ExtractsEmptyArchives) {
  for (auto [k, format] :
       {std::pair{kind::pax, bundle_format::tar}, {kind::tgz, bundle_format::tgz}}) {
    SCOPED_TRACE(static_cast<int>(k));
    { archive_builder(bundle_, k).close(); }
    auto detected = detect_bundle_format(bundle_);
    ASSERT_TRUE(detected) << detected.error().message;
    EXPECT_EQ(detected.value(), format);
    auto r = extract();
    EXPECT_TRUE(r) << r.error().message;
    EXPECT_TRUE(fs::is_empty(dest_));
  }
  // A zip of nothing but its end record is not recognised by libarchive's
  // central-directory reader; it could never hold an appspec anyway.
  { archive_builder(bundle_, kind::zip).close(); }
  EXPECT_EQ(detect_bundle_format(bundle_).error().code, make_error_code(errc::archive_unreadable));
  expect_refused(extract(), errc::archive_unreadable, "bundle");
}

TEST_F(ArchiveTest, RefusesZipSlip) {
  for (kind k : {kind::pax, kind::zip}) {
    {
      archive_builder b(bundle_, k);
      prelude(b);
      b.file("../evil", "pwned");
      b.close();
    }
    expect_refused(extract(), errc::archive_unsafe, "../evil", "\"..\" path component");
  }
}

TEST_F(ArchiveTest, RefusesDotDotInTheMiddle) {
  {
    archive_builder b(bundle_, kind::pax);
    prelude(b);
    b.file("a/../../evil", "pwned");
    b.close();
  }
  expect_refused(extract(), errc::archive_unsafe, "a/../../evil");
}

TEST_F(ArchiveTest, RefusesAbsolutePath) {
  for (kind k : {kind::pax, kind::zip}) {
    {
      archive_builder b(bundle_, k);
      prelude(b);
      b.file(outside_marker_, "pwned");
      b.close();
    }
    expect_refused(extract(), errc::archive_unsafe, outside_marker_, "absolute path");
  }
}

TEST_F(ArchiveTest, RefusesSymlinkToEtcAndTheFileWrittenThroughIt) {
  {
    archive_builder b(bundle_, kind::pax);
    prelude(b);
    b.symlink("etc", "/etc").file(("etc/" + fs::path(etc_marker_).filename().string()), "pwned");
    b.close();
  }
  expect_refused(extract(), errc::archive_unsafe, "\"etc\"", "absolute path \"/etc\"");
}

TEST_F(ArchiveTest, RefusesWritingThroughAnExtractedSymlink) {
  // The link itself stays inside, but nothing may be written through it.
  for (kind k : {kind::pax, kind::zip}) {
    {
      archive_builder b(bundle_, k);
      prelude(b);
      b.symlink("link", "scripts").file("link/start.sh", "#!/bin/sh\nrm -rf /\n", 0755);
      b.close();
    }
    expect_refused(extract(), errc::archive_unsafe, "link/start.sh",
                   "written through the symlink \"link\"");
  }
}

TEST_F(ArchiveTest, RefusesSymlinkClimbingOutOfTheDestination) {
  {
    archive_builder b(bundle_, kind::pax);
    prelude(b);
    b.symlink("x", "../..");
    b.close();
  }
  expect_refused(extract(), errc::archive_unsafe, "\"x\"", "leaves the destination directory");
}

TEST_F(ArchiveTest, RefusesSymlinkChainThatEscapesOnlyWhenFollowed) {
  // Each link is inside lexically; followed like the kernel would, x is dest/..
  {
    archive_builder b(bundle_, kind::zip);
    prelude(b);
    b.symlink("x", "d/b/..").symlink("d/b", "..");
    b.close();
  }
  expect_refused(extract(), errc::archive_unsafe, "\"x\"", "through other extracted symlinks");
}

TEST_F(ArchiveTest, RefusesHardlinkToEtcPasswd) {
  {
    archive_builder b(bundle_, kind::pax);
    prelude(b);
    b.hardlink("passwd", "/etc/passwd");
    b.close();
  }
  expect_refused(extract(), errc::archive_unsafe, "passwd", "hardlink to \"/etc/passwd\"");
}

TEST_F(ArchiveTest, RefusesHardlinksToAnythingButAnEarlierExtractedFile) {
  for (std::string target : {"../../../bundle", "scripts", "etc/passwd", "link"}) {
    SCOPED_TRACE(target);
    {
      archive_builder b(bundle_, kind::pax);
      prelude(b);
      b.symlink("link", "appspec.yml").hardlink("hard", target);
      b.close();
    }
    expect_refused(extract(), errc::archive_unsafe, "hard");
  }
}

TEST_F(ArchiveTest, ExtractsHardlinkToAnEarlierFile) {
  {
    archive_builder b(bundle_, kind::pax);
    prelude(b);
    b.hardlink("start-again.sh", "scripts/start.sh");
    b.close();
  }
  ASSERT_TRUE(extract()) << extract().error().message;
  EXPECT_EQ(test::read_file(dest_ / "start-again.sh"), "#!/bin/sh\n");
  EXPECT_TRUE(fs::equivalent(dest_ / "start-again.sh", dest_ / "scripts/start.sh"));
}

TEST_F(ArchiveTest, RefusesDeviceFifoAndSocketEntries) {
  for (unsigned type : {AE_IFCHR, AE_IFBLK, AE_IFIFO}) {
    SCOPED_TRACE(type);
    {
      archive_builder b(bundle_, kind::pax);
      prelude(b);
      b.special("scripts/node", type);
      b.close();
    }
    expect_refused(extract(), errc::archive_unsafe, "scripts/node");
  }
}

TEST_F(ArchiveTest, RefusesAPathExtractedTwice) {
  {
    archive_builder b(bundle_, kind::pax);
    prelude(b);
    b.file("scripts/start.sh", "#!/bin/sh\nevil\n", 0755);
    b.close();
  }
  expect_refused(extract(), errc::archive_unsafe, "scripts/start.sh");
}

TEST_F(ArchiveTest, RefusesZipBombOverTheEntryLimitCountingRealBytes) {
  for (kind k : {kind::zip, kind::tgz}) {
    {
      archive_builder b(bundle_, k);
      prelude(b);
      b.zeros("bomb", 16u << 20);
      b.close();
    }
    EXPECT_LT(fs::file_size(bundle_), 100u * 1024);  // compresses over 100:1
    extract_limits limits;
    limits.max_entry_bytes = 1 << 20;
    expect_refused(extract(limits), errc::archive_too_large, "bomb");
  }
}

TEST_F(ArchiveTest, RefusesArchiveOverTheTotalLimit) {
  {
    archive_builder b(bundle_, kind::zip);
    prelude(b);
    for (int i = 0; i < 8; ++i) b.zeros("part" + std::to_string(i), 1 << 20);
    b.close();
  }
  extract_limits limits;
  // The prelude's few bytes plus four full parts already exceed 4 MiB.
  limits.max_total_bytes = 4u << 20;
  expect_refused(extract(limits), errc::archive_too_large, "part3");
  limits.max_total_bytes = 9u << 20;
  EXPECT_TRUE(extract(limits));
}

// Patches every uncompressed-size field of a single-entry zip to `size`, so
// the headers lie about the deflated data that follows.
void patch_zip_sizes(const fs::path& zip, std::uint32_t size) {
  std::string bytes = test::read_file(zip);
  int patched = 0;
  for (std::size_t i = 0; i + 30 < bytes.size(); ++i) {
    std::size_t at = 0;
    if (bytes.compare(i, 4, "PK\x03\x04") == 0) at = i + 22;  // local header
    if (bytes.compare(i, 4, "PK\x07\x08") == 0) at = i + 12;  // data descriptor
    if (bytes.compare(i, 4, "PK\x01\x02") == 0) at = i + 24;  // central directory
    if (at == 0) continue;
    std::uint32_t old = 0;
    std::memcpy(&old, &bytes[at], 4);
    if (old != 0) std::memcpy(&bytes[at], &size, 4);
    ++patched;
  }
  ASSERT_EQ(patched, 3);
  test::write_file(zip, bytes);
}

TEST_F(ArchiveTest, RefusesEntryWhoseRealDataExceedsItsHeaderSize) {
  {
    archive_builder b(bundle_, kind::zip);
    b.zeros("liar", 4u << 20);
    b.close();
  }
  patch_zip_sizes(bundle_, 100);
  // Limits the header passes easily; the real data does not fit the claim.
  expect_refused(extract(), errc::archive_unsafe, "liar", "longer than the 100 bytes");
}

TEST_F(ArchiveTest, RefusesTooManyEntries) {
  {
    archive_builder b(bundle_, kind::pax);
    for (int i = 0; i < 11; ++i) b.file("f" + std::to_string(i), "x");
    b.close();
  }
  extract_limits limits;
  limits.max_entries = 10;
  expect_refused(extract(limits), errc::archive_too_large, "f10");
  limits.max_entries = 11;
  EXPECT_TRUE(extract(limits));
}

TEST_F(ArchiveTest, RefusesTooLongPath) {
  std::string path;
  while (path.size() < 5000) path += std::string(200, 'p') + "/";
  path += "file";
  {
    archive_builder b(bundle_, kind::pax);
    prelude(b);
    b.file(path, "x");
    b.close();
  }
  expect_refused(extract(), errc::archive_too_large, path.substr(0, 150));
}

TEST_F(ArchiveTest, RefusesTooLongSymlinkTargetAndComponent) {
  {
    archive_builder b(bundle_, kind::pax);
    prelude(b);
    b.symlink("l", std::string(5000, 'a'));
    b.close();
  }
  expect_refused(extract(), errc::archive_too_large, "\"l\"");
  {
    archive_builder b(bundle_, kind::pax);
    prelude(b);
    b.file(std::string(300, 'n'), "x");
    b.close();
  }
  expect_refused(extract(), errc::archive_too_large, std::string(150, 'n'));
}

TEST_F(ArchiveTest, EscapesControlBytesOfEntryNamesInMessages) {
  {
    archive_builder b(bundle_, kind::pax);
    b.file("../\x1b[31mred\nline", "x");
    b.close();
  }
  auto r = extract();
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("../\\x1b[31mred\\x0aline"));
}

TEST_F(ArchiveTest, RefusesNonEmptyOrMissingDestination) {
  {
    archive_builder b(bundle_, kind::pax);
    prelude(b);
    b.close();
  }
  test::write_file(dest_ / "existing", "keep me");
  auto r = extract();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::invalid_argument));
  EXPECT_EQ(test::read_file(dest_ / "existing"), "keep me");
  r = extract_archive(bundle_, root_ / "missing");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::invalid_argument));
  EXPECT_THAT(r.error().message, HasSubstr("missing"));
}

TEST_F(ArchiveTest, GarbageAndTruncatedArchivesAreUnreadable) {
  test::write_file(bundle_, std::string(4096, 'g'));
  expect_refused(extract(), errc::archive_unreadable, "bundle");
  {
    archive_builder b(bundle_, kind::tgz);
    prelude(b);
    b.zeros("big", 1 << 20);
    b.close();
  }
  fs::resize_file(bundle_, fs::file_size(bundle_) / 2);
  expect_refused(extract(), errc::archive_unreadable, "bundle");
  auto missing = extract_archive(root_ / "nope.zip", dest_);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, make_error_code(errc::io_error));
}

TEST_F(ArchiveTest, CorruptZipDataIsUnreadable) {
  // Incompressible, so the data is 4 KiB in both methods.
  std::string payload(4096, '\0');
  std::uint32_t x = 12345;
  for (char& c : payload) c = static_cast<char>((x = x * 1103515245 + 12345) >> 24);
  for (kind k : {kind::zip, kind::zip_stored}) {
    SCOPED_TRACE(static_cast<int>(k));
    {
      archive_builder b(bundle_, k);
      prelude(b);
      b.file("payload", payload);
      b.close();
    }
    // Flip a byte inside the last entry's data (deflate stream or stored
    // bytes checked by CRC-32): it ends just before the central directory
    // (after at most a 24-byte data descriptor).
    std::string bytes = test::read_file(bundle_);
    const std::size_t central = bytes.find("PK\x01\x02");
    ASSERT_NE(central, std::string::npos);
    bytes[central - 1000] = static_cast<char>(bytes[central - 1000] ^ 0x55);
    test::write_file(bundle_, bytes);
    expect_refused(extract(), errc::archive_unreadable, "payload");
  }
}

TEST_F(ArchiveTest, DetectsFormatFromContentNotName) {
  const fs::path zip = root_ / "really-a-zip.tar";
  const fs::path tar = root_ / "really-a-tar.zip";
  const fs::path tgz = root_ / "really-a-tgz";
  for (auto [path, k] : {std::pair{zip, kind::zip}, {tar, kind::pax}, {tgz, kind::tgz}}) {
    archive_builder b(path, k);
    prelude(b);
    b.close();
  }
  EXPECT_EQ(detect_bundle_format(zip).value(), bundle_format::zip);
  EXPECT_EQ(detect_bundle_format(tar).value(), bundle_format::tar);
  EXPECT_EQ(detect_bundle_format(tgz).value(), bundle_format::tgz);

  const fs::path garbage = root_ / "garbage.zip";
  test::write_file(garbage, "PK\x03\x04 but not really a zip at all, just bytes");
  auto r = detect_bundle_format(garbage);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::archive_unreadable));
  EXPECT_THAT(r.error().message, HasSubstr("garbage.zip"));

  const fs::path empty = root_ / "empty.tar";
  test::write_file(empty, "");
  EXPECT_EQ(detect_bundle_format(empty).error().code, make_error_code(errc::archive_unreadable));
  EXPECT_EQ(detect_bundle_format(root_ / "missing").error().code, make_error_code(errc::io_error));
  EXPECT_EQ(detect_bundle_format(root_.path()).error().code, make_error_code(errc::io_error));
}

TEST_F(ArchiveTest, GzipAroundAnythingButATarIsUnreadable) {
  // A zip inside gzip: readable by libarchive, but no bundle format.
  const fs::path zip = root_ / "inner.zip";
  {
    archive_builder b(zip, kind::zip);
    prelude(b);
    b.close();
  }
  {
    archive* a = archive_write_new();
    ASSERT_EQ(archive_write_set_format_raw(a), ARCHIVE_OK);
    ASSERT_EQ(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    ASSERT_EQ(archive_write_open_filename(a, bundle_.c_str()), ARCHIVE_OK);
    archive_entry* e = archive_entry_new();
    archive_entry_set_filetype(e, AE_IFREG);
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK);
    const std::string bytes = test::read_file(zip);
    archive_write_data(a, bytes.data(), bytes.size());
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
  }
  fs::remove(zip);
  EXPECT_EQ(detect_bundle_format(bundle_).error().code, make_error_code(errc::archive_unreadable));
  expect_refused(extract(), errc::archive_unreadable, "bundle");
}

TEST_F(ArchiveTest, ConcurrentExtractionsAreIndependent) {
  {
    archive_builder b(bundle_, kind::tgz);
    prelude(b);
    for (int i = 0; i < 50; ++i) b.file("many/f" + std::to_string(i), std::string(i * 100, 'c'));
    b.close();
  }
  constexpr int threads = 4;
  std::vector<fs::path> dests;
  for (int i = 0; i < threads; ++i) {
    dests.push_back(root_ / ("t" + std::to_string(i)));
    fs::create_directory(dests.back());
  }
  std::vector<int> ok(threads, 0);
  {
    std::vector<std::jthread> workers;
    for (int i = 0; i < threads; ++i) {
      workers.emplace_back([&, i] { ok[i] = extract_archive(bundle_, dests[i]) ? 1 : 0; });
    }
  }
  for (int i = 0; i < threads; ++i) {
    EXPECT_EQ(ok[i], 1);
    EXPECT_EQ(test::read_file(dests[i] / "many/f49"), std::string(4900, 'c'));
  }
}

}  // namespace
}  // namespace meshdeploy::agent

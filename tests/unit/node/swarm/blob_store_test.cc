// The blob store on real files: pieces written and read back verified, resume after a restart
// from the bytes on disk (a corrupted piece is not held), a part file of the wrong size
// recreated, a full disk (RLIMIT_FSIZE in a forked child) failing with a clear error and no
// file left behind, atomic manifests, garbage collection and hostile ids.
#include "node/swarm/blob_store.h"

#include "node/agent/errc.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace meshdeploy::swarm {
namespace {

namespace fs = std::filesystem;

const std::string id_a(64, 'a');
const std::string id_b = std::string(63, '0') + "1";
const std::string id_c = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::vector<std::byte> random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

manifest manifest_of(const std::vector<std::byte>& bytes, std::uint32_t piece_size) {
  manifest m;
  m.size = bytes.size();
  m.piece_size = piece_size;
  for (std::size_t off = 0; off < bytes.size(); off += piece_size) {
    const std::size_t len = std::min<std::size_t>(piece_size, bytes.size() - off);
    m.pieces.push_back(hash_piece(std::span(bytes).subspan(off, len)));
  }
  return m;
}

std::vector<std::byte> file_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

// Overwrites one byte of `file` at `offset` with its complement.
void corrupt(const fs::path& file, std::uint64_t offset) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(~c));
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

class BlobStoreTest : public ::testing::Test {
 protected:
  // 3.5 pieces of the smallest size: the last piece is short.
  BlobStoreTest()
      : data_(random_bytes(3 * min_piece_size + min_piece_size / 2, 7)),
        m_(manifest_of(data_, min_piece_size)) {}

  std::span<const std::byte> piece(std::size_t i) const {
    return std::span(data_).subspan(m_.piece_offset(i), m_.piece_length(i));
  }
  fs::path part_path(const std::string& id) const { return dir_ / "blobs" / (id + ".part"); }

  test::temp_dir dir_{"blob-store"};
  blob_store store_{dir_ / "blobs"};
  std::vector<std::byte> data_;
  manifest m_;
};

TEST_F(BlobStoreTest, CreatesItsDirectory) { EXPECT_TRUE(fs::is_directory(dir_ / "blobs")); }

TEST_F(BlobStoreTest, NewPartIsReservedAtFullSizeAndHoldsNothing) {
  auto part = store_.open_part(id_a, m_);
  ASSERT_TRUE(part.has_value()) << part.error().message;
  EXPECT_EQ(part.value().path(), part_path(id_a));
  EXPECT_EQ(part.value().held_count(), 0u);
  EXPECT_EQ(part.value().held_bytes(), 0u);
  EXPECT_EQ(part.value().held(), std::vector<bool>(4, false));
  EXPECT_FALSE(part.value().complete());
  struct stat st {};
  ASSERT_EQ(::stat(part_path(id_a).c_str(), &st), 0);
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), m_.size);
  // The blocks are allocated, not a sparse hole.
  EXPECT_GE(static_cast<std::uint64_t>(st.st_blocks) * 512, m_.size);
}

TEST_F(BlobStoreTest, WrittenPiecesAreHeldAndReadBack) {
  auto opened = store_.open_part(id_a, m_);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  part_file part = std::move(opened).value();
  ASSERT_TRUE(part.write(3, piece(3)).has_value());  // the short last piece
  ASSERT_TRUE(part.write(1, piece(1)).has_value());
  EXPECT_EQ(part.held(), (std::vector<bool>{false, true, false, true}));
  EXPECT_EQ(part.held_count(), 2u);
  EXPECT_EQ(part.held_bytes(), m_.piece_length(1) + m_.piece_length(3));
  auto back = part.read(3);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_TRUE(std::ranges::equal(back.value(), piece(3)));
  auto missing = part.read(0);
  ASSERT_FALSE(missing.has_value());
  EXPECT_TRUE(contains(missing.error().message, "not held")) << missing.error().message;
  EXPECT_FALSE(part.read(4).has_value());

  // Writing a held piece again changes nothing.
  ASSERT_TRUE(part.write(1, piece(1)).has_value());
  EXPECT_EQ(part.held_count(), 2u);

  for (std::size_t i : {0u, 2u}) ASSERT_TRUE(part.write(i, piece(i)).has_value());
  EXPECT_TRUE(part.complete());
  EXPECT_EQ(part.held_bytes(), m_.size);
  ASSERT_TRUE(part.close().has_value());
  EXPECT_EQ(file_bytes(part_path(id_a)), data_);
  for (std::size_t i = 0; i < m_.piece_count(); ++i) {
    auto served = read_piece(part_path(id_a), m_, i);
    ASSERT_TRUE(served.has_value()) << served.error().message;
    EXPECT_TRUE(std::ranges::equal(served.value(), piece(i))) << i;
  }
  // After close() the part refuses further I/O instead of touching a reused descriptor.
  EXPECT_FALSE(part.read(0).has_value());
}

// The serve path reads a piece straight into the caller's buffer (the frame it is sent from).
TEST_F(BlobStoreTest, ReadsIntoTheCallersBufferOfExactlyThePieceLength) {
  part_file part = store_.open_part(id_a, m_).value();
  for (std::size_t i = 0; i < m_.piece_count(); ++i) ASSERT_TRUE(part.write(i, piece(i)));
  std::vector<std::byte> buf(m_.piece_length(3), std::byte{0xee});
  ASSERT_TRUE(part.read(3, buf));
  EXPECT_TRUE(std::ranges::equal(buf, piece(3)));
  // A buffer of any other length is refused, untouched.
  const std::size_t len = m_.piece_length(3);
  for (std::size_t n : {len - 1, len + 1, std::size_t{0}}) {
    std::vector<std::byte> wrong(n, std::byte{0xee});
    auto r = part.read(3, wrong);
    ASSERT_FALSE(r) << n;
    EXPECT_TRUE(contains(r.error().message, "bytes, not")) << r.error().message;
    EXPECT_EQ(wrong, std::vector<std::byte>(n, std::byte{0xee}));
  }
  ASSERT_TRUE(part.close());
  std::vector<std::byte> full(m_.piece_length(0));
  ASSERT_TRUE(read_piece(part_path(id_a), m_, 0, full));
  EXPECT_TRUE(std::ranges::equal(full, piece(0)));
  std::vector<std::byte> past(m_.piece_length(0));
  EXPECT_FALSE(read_piece(part_path(id_a), m_, m_.piece_count(), past));
  std::vector<std::byte> wrong(m_.piece_length(0) + 1);
  EXPECT_FALSE(read_piece(part_path(id_a), m_, 0, wrong));
}

TEST_F(BlobStoreTest, WriteRefusesPiecesOutsideTheManifest) {
  part_file part = store_.open_part(id_a, m_).value();
  auto wrong_index = part.write(4, piece(3));
  ASSERT_FALSE(wrong_index.has_value());
  EXPECT_EQ(wrong_index.error().code, make_error_code(agent::errc::invalid_argument));
  auto wrong_length = part.write(3, piece(2));
  ASSERT_FALSE(wrong_length.has_value());
  EXPECT_TRUE(contains(wrong_length.error().message, "expected")) << wrong_length.error().message;
  EXPECT_EQ(part.held_count(), 0u);
  // Nothing reached the disk: a reopen finds no piece.
  part = store_.open_part(id_a, m_).value();
  EXPECT_EQ(part.held_count(), 0u);
}

TEST_F(BlobStoreTest, ReopenResumesFromTheVerifiedPieces) {
  {
    part_file part = store_.open_part(id_a, m_).value();
    ASSERT_TRUE(part.write(0, piece(0)).has_value());
    ASSERT_TRUE(part.write(3, piece(3)).has_value());
    // Killed here: destroyed without close().
  }
  {
    part_file part = store_.open_part(id_a, m_).value();
    EXPECT_EQ(part.held(), (std::vector<bool>{true, false, false, true}));
    EXPECT_EQ(part.held_bytes(), m_.piece_length(0) + m_.piece_length(3));
    ASSERT_TRUE(part.write(2, piece(2)).has_value());
  }
  // A byte of piece 2 rots on disk: it is no longer held, the others are.
  corrupt(part_path(id_a), m_.piece_offset(2) + 17);
  part_file part = store_.open_part(id_a, m_).value();
  EXPECT_EQ(part.held(), (std::vector<bool>{true, false, false, true}));
  EXPECT_EQ(part.held_count(), 2u);
  ASSERT_TRUE(part.write(1, piece(1)).has_value());
  ASSERT_TRUE(part.write(2, piece(2)).has_value());
  EXPECT_TRUE(part.complete());
  ASSERT_TRUE(part.close().has_value());
  EXPECT_EQ(file_bytes(part_path(id_a)), data_);
  // A complete part reopens complete.
  EXPECT_TRUE(store_.open_part(id_a, m_).value().complete());
}

TEST_F(BlobStoreTest, PartOfTheWrongSizeIsRecreated) {
  // Another manifest's bytes under this name (or a file cut short): same prefix, other size.
  std::vector<std::byte> longer = data_;
  longer.resize(data_.size() + 5);
  std::ofstream(part_path(id_a), std::ios::binary)
      .write(reinterpret_cast<const char*>(longer.data()),
             static_cast<std::streamsize>(longer.size()));
  part_file part = store_.open_part(id_a, m_).value();
  EXPECT_EQ(part.held_count(), 0u);  // not even the pieces whose bytes happened to match
  EXPECT_EQ(fs::file_size(part_path(id_a)), m_.size);
  EXPECT_EQ(file_bytes(part_path(id_a)), std::vector<std::byte>(m_.size));
}

TEST_F(BlobStoreTest, EmptyBundleIsCompleteAtOnce) {
  const manifest empty = manifest_of({}, default_piece_size);
  part_file part = store_.open_part(id_b, empty).value();
  EXPECT_TRUE(part.complete());
  EXPECT_EQ(part.held_count(), 0u);
  ASSERT_TRUE(part.close().has_value());
  EXPECT_EQ(fs::file_size(part_path(id_b)), 0u);
}

TEST_F(BlobStoreTest, InconsistentManifestIsRefused) {
  manifest short_list = m_;
  short_list.pieces.pop_back();
  EXPECT_FALSE(store_.open_part(id_a, short_list).has_value());
  manifest bad_size = m_;
  bad_size.piece_size = 100;
  EXPECT_FALSE(store_.open_part(id_a, bad_size).has_value());
  EXPECT_FALSE(fs::exists(part_path(id_a)));
}

TEST_F(BlobStoreTest, ReadPieceOfACompleteBundle) {
  const fs::path bundle = dir_ / "bundle";
  std::ofstream(bundle, std::ios::binary)
      .write(reinterpret_cast<const char*>(data_.data()),
             static_cast<std::streamsize>(data_.size()));
  ASSERT_TRUE(read_piece(bundle, m_, 2).has_value());
  auto past_end = read_piece(bundle, m_, 4);
  ASSERT_FALSE(past_end.has_value());
  EXPECT_EQ(past_end.error().code, make_error_code(agent::errc::invalid_argument));
  fs::resize_file(bundle, m_.piece_offset(3) + 1);  // the last piece is cut short
  auto cut = read_piece(bundle, m_, 3);
  ASSERT_FALSE(cut.has_value());
  EXPECT_EQ(cut.error().code, make_error_code(agent::errc::io_error));
  auto missing = read_piece(dir_ / "nope", m_, 0);
  ASSERT_FALSE(missing.has_value());
  EXPECT_TRUE(contains(missing.error().message, (dir_ / "nope").string()));
}

// Runs `body` in a forked child whose files may not grow past `limit_bytes` (SIGXFSZ ignored,
// so writes past it fail with EFBIG like on a full disk). The child's exit status is
// body()'s return value; its failure text goes to stderr.
int in_child_with_file_size_limit(rlim_t limit_bytes, const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit lim{limit_bytes, limit_bytes};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(100);
    ::_exit(body());
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

TEST_F(BlobStoreTest, DiskFullFailsTheDownloadUpFrontAndLeavesNoPart) {
  const std::vector<std::byte> big = random_bytes(1 << 20, 9);
  const manifest m = manifest_of(big, default_piece_size);
  const fs::path path = part_path(id_c);
  const int status = in_child_with_file_size_limit(64 * 1024, [&] {
    auto part = store_.open_part(id_c, m);
    if (part.has_value()) return 1;
    const std::string& text = part.error().message;
    std::fprintf(stderr, "open_part: %s\n", text.c_str());
    if (part.error().code != make_error_code(agent::errc::io_error)) return 2;
    if (!contains(text, path.string())) return 3;
    if (!contains(text, "1048576 bytes")) return 4;
    return fs::exists(path) ? 5 : 0;
  });
  EXPECT_EQ(status, 0) << "see the child's stderr above";
  EXPECT_FALSE(fs::exists(path));
  // Other downloads are untouched, and the same download works once there is room.
  auto part = store_.open_part(id_c, m);
  ASSERT_TRUE(part.has_value()) << part.error().message;
  EXPECT_EQ(fs::file_size(path), m.size);
}

TEST_F(BlobStoreTest, FailedWriteDoesNotCountAsHeld) {
  part_file part = store_.open_part(id_a, m_).value();
  ASSERT_TRUE(part.write(0, piece(0)).has_value());
  // Writes past 2 pieces fail in the child (the reservation is already there, as after a
  // disk error): the piece is not held there, and the bytes on disk are still verified.
  const int status = in_child_with_file_size_limit(2 * min_piece_size, [&] {
    if (!part.write(1, piece(1)).has_value()) return 1;
    auto failed = part.write(2, piece(2));
    if (failed.has_value()) return 2;
    std::fprintf(stderr, "write: %s\n", failed.error().message.c_str());
    if (!contains(failed.error().message, part.path().string())) return 3;
    if (part.held() != std::vector<bool>{true, true, false, false}) return 4;
    return 0;
  });
  EXPECT_EQ(status, 0) << "see the child's stderr above";
  part_file reopened = store_.open_part(id_a, m_).value();
  EXPECT_EQ(reopened.held(), (std::vector<bool>{true, true, false, false}));
}

TEST_F(BlobStoreTest, ManifestIsSavedAtomicallyAndLoaded) {
  EXPECT_EQ(store_.load_manifest(id_a), std::nullopt);
  const auto encoded = encode_manifest(m_);
  ASSERT_TRUE(store_.save_manifest(id_a, encoded).has_value());
  EXPECT_EQ(store_.load_manifest(id_a), encoded);
  const auto other = encode_manifest(manifest_of(random_bytes(10, 3), min_piece_size));
  ASSERT_TRUE(store_.save_manifest(id_a, other).has_value());  // replaced whole
  EXPECT_EQ(store_.load_manifest(id_a), other);
  // Only the manifest is left: no temporary file.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_ / "blobs")) {
    names.push_back(e.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{id_a + ".manifest"});
}

TEST_F(BlobStoreTest, OversizedManifestFileIsNotLoaded) {
  const std::string junk(3 << 20, 'x');
  std::ofstream(dir_ / "blobs" / (id_b + ".manifest"), std::ios::binary) << junk;
  EXPECT_EQ(store_.load_manifest(id_b), std::nullopt);
}

TEST_F(BlobStoreTest, BadIdsAreRefused) {
  const auto encoded = encode_manifest(m_);
  for (const std::string& id :
       {std::string(), std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'A'),
        std::string(64, 'g'), "../" + std::string(61, 'a'), std::string(62, 'a') + "/x",
        std::string(63, 'a') + std::string(1, '\0')}) {
    auto saved = store_.save_manifest(id, encoded);
    ASSERT_FALSE(saved.has_value());
    EXPECT_EQ(saved.error().code, make_error_code(agent::errc::invalid_argument));
    EXPECT_TRUE(contains(saved.error().message, "not a bundle id"));
    auto part = store_.open_part(id, m_);
    ASSERT_FALSE(part.has_value());
    EXPECT_EQ(part.error().code, make_error_code(agent::errc::invalid_argument));
    EXPECT_EQ(store_.load_manifest(id), std::nullopt);
    store_.remove_part(id);  // a no-op, not a removal elsewhere
  }
  EXPECT_TRUE(fs::is_empty(dir_ / "blobs"));
  EXPECT_TRUE(fs::exists(dir_.path()));
}

TEST_F(BlobStoreTest, RemovePartRemovesOnlyThePart) {
  ASSERT_TRUE(store_.save_manifest(id_a, encode_manifest(m_)).has_value());
  ASSERT_TRUE(store_.open_part(id_a, m_).has_value());
  store_.remove_part(id_a);
  EXPECT_FALSE(fs::exists(part_path(id_a)));
  EXPECT_TRUE(store_.load_manifest(id_a).has_value());
  store_.remove_part(id_b);  // nothing there: no error
}

TEST_F(BlobStoreTest, CollectRemovesOnlyUnkeptManifestsAndParts) {
  const fs::path blobs = dir_ / "blobs";
  for (const std::string& id : {id_a, id_b, id_c}) {
    ASSERT_TRUE(store_.save_manifest(id, encode_manifest(m_)).has_value());
    ASSERT_TRUE(store_.open_part(id, m_).has_value());
  }
  const std::vector<std::string> unknown = {
      "README",
      id_b + ".manifest.tmp-abc123",   // a temporary manifest
      std::string(64, 'B') + ".part",  // upper case: not a bundle id
      std::string(63, 'b') + ".part",
      id_b + ".bundle",
      id_b,
  };
  for (const auto& name : unknown) std::ofstream(blobs / name) << "x";
  // A directory with a recognised name is not removed either.
  const std::string dir_name = std::string(64, 'd') + ".part";
  fs::create_directory(blobs / dir_name);

  EXPECT_EQ(store_.collect({id_a}), 4u);  // b and c: manifest and part each
  EXPECT_TRUE(fs::exists(blobs / (id_a + ".manifest")));
  EXPECT_TRUE(fs::exists(blobs / (id_a + ".part")));
  for (const std::string& id : {id_b, id_c}) {
    EXPECT_FALSE(fs::exists(blobs / (id + ".manifest"))) << id;
    EXPECT_FALSE(fs::exists(blobs / (id + ".part"))) << id;
  }
  for (const auto& name : unknown) EXPECT_TRUE(fs::exists(blobs / name)) << name;
  EXPECT_TRUE(fs::is_directory(blobs / dir_name));

  EXPECT_EQ(store_.collect({id_a}), 0u);  // nothing more to do
  EXPECT_EQ(store_.collect({}), 2u);
  EXPECT_FALSE(fs::exists(blobs / (id_a + ".part")));
}

TEST_F(BlobStoreTest, CollectOnAMissingDirectoryRemovesNothing) {
  blob_store gone(dir_ / "blobs");
  fs::remove_all(dir_ / "blobs");
  EXPECT_EQ(gone.collect({}), 0u);
}

TEST_F(BlobStoreTest, MovedPartKeepsWorking) {
  part_file a = store_.open_part(id_a, m_).value();
  ASSERT_TRUE(a.write(0, piece(0)).has_value());
  part_file b = std::move(a);
  ASSERT_TRUE(b.write(1, piece(1)).has_value());
  EXPECT_EQ(b.held_count(), 2u);
  part_file c = store_.open_part(id_b, m_).value();
  c = std::move(b);  // closes c's own descriptor
  ASSERT_TRUE(c.read(1).has_value());
  ASSERT_TRUE(c.close().has_value());
}

}  // namespace
}  // namespace meshdeploy::swarm

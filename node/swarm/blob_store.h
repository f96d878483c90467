// The swarm's files under <data-dir>/blobs/ (DESIGN §9, docs/swarm.md "On disk"):
//   <bundle-id>.manifest  the encoded manifest (written atomically: temp file + rename)
//   <bundle-id>.part      a download in progress: the bundle's bytes at their offsets, a piece
//                         written in place once verified. The file is reserved at full size
//                         when the download starts (posix_fallocate), so a full disk fails
//                         the download up front with a clear error and nothing else is written.
// A node killed mid-download resumes from the pieces it verified: open_part() re-hashes every
// piece of an existing part file and keeps those that match the manifest (no separate
// bookkeeping can disagree with the bytes). When every piece is held, the part file is the
// bundle; the caller verifies its whole hash and moves it into the revision store.
//
// Thread safety: a blob_store is stateless apart from its directory; part_file is not
// thread-safe.
#pragma once

#include "node/swarm/manifest.h"
#include "storage/result.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace meshdeploy::swarm {

class part_file {
 public:
  part_file(part_file&&) noexcept;
  part_file& operator=(part_file&&) noexcept;
  part_file(const part_file&) = delete;
  part_file& operator=(const part_file&) = delete;
  ~part_file();

  // Writes piece `index` at its offset. The caller has checked its hash against the manifest
  // (the swarm does, before anything is stored); the length is checked here. Errors:
  // io_error naming the file (disk full, I/O error); the piece then does not count as held.
  result<void> write(std::size_t index, std::span<const std::byte> data);
  // Reads piece `index`'s bytes into `out` (not hashed again: receivers verify); only for held
  // pieces. Errors: invalid_argument (not held, or out.size() is not the piece's length),
  // io_error naming the file.
  [[nodiscard]] result<void> read(std::size_t index, std::span<std::byte> out) const;
  // The same into a new vector.
  [[nodiscard]] result<std::vector<std::byte>> read(std::size_t index) const;
  [[nodiscard]] const std::vector<bool>& held() const { return held_; }
  [[nodiscard]] std::size_t held_count() const { return held_count_; }
  [[nodiscard]] std::uint64_t held_bytes() const { return held_bytes_; }
  [[nodiscard]] bool complete() const { return held_count_ == m_.piece_count(); }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  // Flushes to disk (fsync) and closes; the file stays at path(). Call once complete().
  result<void> close();

 private:
  friend class blob_store;
  part_file(std::filesystem::path path, manifest m, int fd);

  std::filesystem::path path_;
  manifest m_;
  int fd_ = -1;
  std::vector<bool> held_;
  std::size_t held_count_ = 0;
  std::uint64_t held_bytes_ = 0;
};

class blob_store {
 public:
  // Creates `dir` if missing.
  explicit blob_store(std::filesystem::path dir);

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

  // `id` is a bundle id (64 hex digits; anything else is refused with invalid_argument, so a
  // name from the network never leaves the directory).
  result<void> save_manifest(const std::string& id, std::span<const std::byte> encoded);
  // The stored encoding, or nullopt if none (or unreadable).
  [[nodiscard]] std::optional<std::vector<std::byte>> load_manifest(const std::string& id) const;

  // Opens (resuming) or creates <id>.part for `m`. Errors: io_error naming the file, e.g.
  // "no space left on device to reserve 67108864 bytes for blobs/<id>.part".
  result<part_file> open_part(const std::string& id, const manifest& m);
  // Removes <id>.part (a failed bundle, or one moved away).
  void remove_part(const std::string& id);

  // Removes every manifest and part file whose bundle id is not in `keep`; returns how many
  // files it removed. Files it does not recognise are left alone.
  std::size_t collect(const std::set<std::string>& keep);

 private:
  std::filesystem::path dir_;
};

// Reads piece `index` of the complete bundle `file` described by `m` (serving a bundle this node
// holds) into `out`, which must be exactly the piece's length. Errors: invalid_argument (index
// or length), io_error naming the file.
result<void> read_piece(const std::filesystem::path& file, const manifest& m, std::size_t index,
                        std::span<std::byte> out);
// The same into a new vector.
result<std::vector<std::byte>> read_piece(const std::filesystem::path& file, const manifest& m,
                                          std::size_t index);

}  // namespace meshdeploy::swarm

#include "node/swarm/blob_store.h"

#include "node/agent/errc.h"
#include "node/agent/revision.h"
#include "node/agent/unique_fd.h"

#include <fmt/format.h>

#include <cerrno>
#include <fcntl.h>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <utility>

namespace meshdeploy::swarm {

namespace fs = std::filesystem;
using agent::errc;
using agent::unique_fd;

namespace {

constexpr std::string_view manifest_suffix = ".manifest";
constexpr std::string_view part_suffix = ".part";
// A stored manifest longer than the largest valid encoding is not read (see manifest.cc).
constexpr std::size_t max_manifest_file_bytes = 64 + max_pieces * std::tuple_size_v<piece_hash>;

error io_failure(std::string_view what, const fs::path& path, int e) {
  return make_error(errc::io_error,
                    fmt::format("{} {}: {}", what, path.string(), agent::errno_text(e)));
}

error bad_id(const std::string& id) {
  // The id may come from the network: shown escaped and cut short.
  return make_error(errc::invalid_argument,
                    fmt::format("blob store: {:?} is not a bundle id (64 lowercase hex digits)",
                                id.substr(0, 80)));
}

bool pread_full(int fd, std::byte* data, std::size_t size, std::uint64_t offset) {
  while (size > 0) {
    const ssize_t r = ::pread(fd, data, size, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (r == 0) {
      errno = EIO;  // the file is shorter than the manifest says
      return false;
    }
    data += r;
    size -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
  return true;
}

bool pwrite_full(int fd, const std::byte* data, std::size_t size, std::uint64_t offset) {
  while (size > 0) {
    const ssize_t w = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    size -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
  return true;
}

// Makes the directory entries of `dir` durable (after a create or rename in it).
void sync_dir(const fs::path& dir) {
  unique_fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.valid()) ::fsync(fd.get());
}

// Reads piece `index` of `m` from `fd` into `out` (exactly the piece's length): one pread into
// the caller's buffer (a frame buffer the piece is sent from: no zero-fill, no copy).
result<void> read_into(int fd, const fs::path& path, const manifest& m, std::size_t index,
                       std::span<std::byte> out) {
  if (index >= m.piece_count()) {
    return make_error(errc::invalid_argument,
                      fmt::format("piece {} of {}: the bundle has {} pieces", index, path.string(),
                                  m.piece_count()));
  }
  if (out.size() != m.piece_length(index)) {
    return make_error(errc::invalid_argument,
                      fmt::format("piece {} of {} is {} bytes, not {}", index, path.string(),
                                  m.piece_length(index), out.size()));
  }
  if (fd < 0) {
    return make_error(errc::io_error, fmt::format("{} is closed", path.string()));
  }
  if (!pread_full(fd, out.data(), out.size(), m.piece_offset(index))) {
    return io_failure(fmt::format("cannot read piece {} of", index), path, errno);
  }
  // Not hashed again here: every receiver verifies each piece against the manifest (and drops a
  // sender of bad bytes), and a hash per read would double the CPU a seed spends per byte.
  return ok();
}

// `m` describes a bundle a part file can hold: its piece size is in range and it has one hash
// per piece. (A manifest from decode_manifest always does.)
result<void> check_manifest(const manifest& m) {
  if (m.piece_size < min_piece_size || m.piece_size > max_piece_size) {
    return make_error(errc::invalid_argument,
                      fmt::format("manifest piece size {} outside [{}, {}]", m.piece_size,
                                  min_piece_size, max_piece_size));
  }
  const std::uint64_t count = m.size / m.piece_size + (m.size % m.piece_size != 0 ? 1 : 0);
  if (count != m.piece_count() || count > max_pieces) {
    return make_error(errc::invalid_argument,
                      fmt::format("manifest of {} bytes lists {} pieces of {} bytes", m.size,
                                  m.piece_count(), m.piece_size));
  }
  return ok();
}

// `<64 hex>.manifest` or `<64 hex>.part`: the bundle id, else "".
std::string bundle_of(const std::string& name) {
  for (const auto suffix : {manifest_suffix, part_suffix}) {
    if (name.size() == 64 + suffix.size() && name.ends_with(suffix)) {
      std::string id = name.substr(0, 64);
      if (agent::is_revision_id(id)) return id;
    }
  }
  return {};
}

}  // namespace

// ---- part_file ------------------------------------------------------------------------------

part_file::part_file(fs::path path, manifest m, int fd)
    : path_(std::move(path)), m_(std::move(m)), fd_(fd), held_(m_.piece_count(), false) {}

part_file::part_file(part_file&& o) noexcept
    : path_(std::move(o.path_)),
      m_(std::move(o.m_)),
      fd_(std::exchange(o.fd_, -1)),
      held_(std::move(o.held_)),
      held_count_(std::exchange(o.held_count_, 0)),
      held_bytes_(std::exchange(o.held_bytes_, 0)) {}

part_file& part_file::operator=(part_file&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    m_ = std::move(o.m_);
    fd_ = std::exchange(o.fd_, -1);
    held_ = std::move(o.held_);
    held_count_ = std::exchange(o.held_count_, 0);
    held_bytes_ = std::exchange(o.held_bytes_, 0);
  }
  return *this;
}

part_file::~part_file() {
  if (fd_ >= 0) ::close(fd_);
}

result<void> part_file::write(std::size_t index, std::span<const std::byte> data) {
  if (index >= m_.piece_count()) {
    return make_error(errc::invalid_argument,
                      fmt::format("piece {} of {}: the bundle has {} pieces", index, path_.string(),
                                  m_.piece_count()));
  }
  if (data.size() != m_.piece_length(index)) {
    return make_error(errc::invalid_argument,
                      fmt::format("piece {} of {} is {} bytes, expected {}", index, path_.string(),
                                  data.size(), m_.piece_length(index)));
  }
  if (held_[index]) return ok();  // the same bytes are already there
  if (fd_ < 0) return make_error(errc::io_error, fmt::format("{} is closed", path_.string()));
  if (!pwrite_full(fd_, data.data(), data.size(), m_.piece_offset(index))) {
    return io_failure(fmt::format("cannot write piece {} to", index), path_, errno);
  }
  held_[index] = true;
  ++held_count_;
  held_bytes_ += data.size();
  return ok();
}

result<void> part_file::read(std::size_t index, std::span<std::byte> out) const {
  if (index < held_.size() && !held_[index]) {
    return make_error(errc::invalid_argument,
                      fmt::format("piece {} of {} is not held", index, path_.string()));
  }
  return read_into(fd_, path_, m_, index, out);
}

result<std::vector<std::byte>> part_file::read(std::size_t index) const {
  std::vector<std::byte> data(index < m_.piece_count() ? m_.piece_length(index) : 0);
  MESH_CHECK(read(index, data));
  return data;
}

result<void> part_file::close() {
  if (fd_ < 0) return ok();
  const int fd = std::exchange(fd_, -1);
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    return io_failure("cannot sync", path_, e);
  }
  if (::close(fd) != 0) return io_failure("cannot close", path_, errno);
  return ok();
}

// ---- blob_store -----------------------------------------------------------------------------

blob_store::blob_store(fs::path dir) : dir_(std::move(dir)) {
  // A failure shows up, naming the path, at the first operation that needs the directory.
  std::error_code ec;
  fs::create_directories(dir_, ec);
}

result<void> blob_store::save_manifest(const std::string& id, std::span<const std::byte> encoded) {
  if (!agent::is_revision_id(id)) return bad_id(id);
  const fs::path final_path = dir_ / (id + std::string(manifest_suffix));
  std::string templ = final_path.string() + ".tmp-XXXXXX";
  unique_fd fd(::mkostemp(templ.data(), O_CLOEXEC));
  if (!fd.valid()) return io_failure("cannot create a temporary file", templ, errno);
  const fs::path tmp(templ);
  auto fail = [&](std::string_view what, int e) {
    fd.reset();
    ::unlink(tmp.c_str());
    return io_failure(what, tmp, e);
  };
  if (!pwrite_full(fd.get(), encoded.data(), encoded.size(), 0)) return fail("cannot write", errno);
  if (::fsync(fd.get()) != 0) return fail("cannot sync", errno);
  if (fd.close() != 0) return fail("cannot close", errno);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return io_failure(fmt::format("cannot rename {} to", tmp.string()), final_path, e);
  }
  sync_dir(dir_);
  return ok();
}

std::optional<std::vector<std::byte>> blob_store::load_manifest(const std::string& id) const {
  if (!agent::is_revision_id(id)) return std::nullopt;
  const fs::path path = dir_ / (id + std::string(manifest_suffix));
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
  if (!fd.valid()) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > max_manifest_file_bytes) return std::nullopt;
  std::vector<std::byte> out(size);
  if (!pread_full(fd.get(), out.data(), out.size(), 0)) return std::nullopt;
  return out;
}

result<part_file> blob_store::open_part(const std::string& id, const manifest& m) {
  if (!agent::is_revision_id(id)) return bad_id(id);
  MESH_CHECK(check_manifest(m));
  const fs::path path = dir_ / (id + std::string(part_suffix));
  const int raw = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
  if (raw < 0) return io_failure("cannot open", path, errno);
  part_file part(path, m, raw);  // owns the descriptor from here on
  struct stat st {};
  if (::fstat(raw, &st) != 0) return io_failure("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return make_error(errc::io_error, fmt::format("{} is not a regular file", path.string()));
  }
  const bool resume = static_cast<std::uint64_t>(st.st_size) == m.size;
  if (!resume) {
    // Another size: not this manifest's download (or cut short before its reservation).
    if (::ftruncate(raw, 0) != 0) return io_failure("cannot truncate", path, errno);
  }
  // Reserve every block now, so that a full disk fails here rather than halfway through the
  // download. On a resumed file the blocks are normally there already and this is cheap.
  if (m.size > 0) {
    const int e = ::posix_fallocate(raw, 0, static_cast<off_t>(m.size));
    if (e != 0) {
      std::string what = e == ENOSPC
                             ? fmt::format("no space left on device to reserve {} bytes for {}",
                                           m.size, path.string())
                             : fmt::format("cannot reserve {} bytes for {}: {}", m.size,
                                           path.string(), agent::errno_text(e));
      if (!resume) {
        // Nothing of this download is in the file: leave no half-reserved file behind.
        ::close(std::exchange(part.fd_, -1));
        ::unlink(path.c_str());
      }
      return make_error(errc::io_error, std::move(what));
    }
  }
  if (resume) {
    // Every piece is judged by its bytes: those that match the manifest are held.
    std::vector<std::byte> buffer(m.piece_size);
    for (std::size_t i = 0; i < m.piece_count(); ++i) {
      const std::uint32_t len = m.piece_length(i);
      if (!pread_full(part.fd_, buffer.data(), len, m.piece_offset(i))) {
        return io_failure(fmt::format("cannot read piece {} of", i), path, errno);
      }
      if (hash_piece(std::span<const std::byte>(buffer.data(), len)) == m.pieces[i]) {
        part.held_[i] = true;
        ++part.held_count_;
        part.held_bytes_ += len;
      }
    }
  }
  sync_dir(dir_);
  return part;
}

void blob_store::remove_part(const std::string& id) {
  if (!agent::is_revision_id(id)) return;
  const fs::path path = dir_ / (id + std::string(part_suffix));
  ::unlink(path.c_str());
}

std::size_t blob_store::collect(const std::set<std::string>& keep) {
  std::size_t removed = 0;
  std::error_code ec;
  fs::directory_iterator it(dir_, ec);
  if (ec) return 0;
  for (const fs::directory_iterator end; it != end; it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    const std::string id = bundle_of(name);
    if (id.empty() || keep.count(id) != 0) continue;
    // unlink(2) refuses directories: only files (or stray links) by these names go.
    if (::unlink(it->path().c_str()) == 0) ++removed;
  }
  return removed;
}

result<void> read_piece(const fs::path& file, const manifest& m, std::size_t index,
                        std::span<std::byte> out) {
  unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return io_failure("cannot open", file, errno);
  return read_into(fd.get(), file, m, index, out);
}

result<std::vector<std::byte>> read_piece(const fs::path& file, const manifest& m,
                                          std::size_t index) {
  std::vector<std::byte> data(index < m.piece_count() ? m.piece_length(index) : 0);
  MESH_CHECK(read_piece(file, m, index, data));
  return data;
}

}  // namespace meshdeploy::swarm

#include "node/agent/revision.h"

#include "node/agent/errc.h"
#include "node/agent/unique_fd.h"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <fcntl.h>
#include <map>
#include <memory>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

namespace meshdeploy::agent {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t io_chunk = 64 * 1024;
constexpr std::size_t hash_bytes = 32;  // BLAKE2b-256

struct archive_write_deleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
using archive_writer = std::unique_ptr<struct archive, archive_write_deleter>;

error io_failure(std::string_view what, const fs::path& path, int e) {
  return make_error(errc::io_error, fmt::format("{} {}: {}", what, path.string(), errno_text(e)));
}

// Reads up to `size` bytes, retrying on EINTR and short reads. Returns the
// number read (less than `size` only at end of file), or -1 with errno set.
ssize_t read_full(int fd, char* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t r = ::read(fd, data + done, size - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

bool write_full(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t w = ::write(fd, data, size);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    size -= static_cast<std::size_t>(w);
  }
  return true;
}

// A temporary file `<prefix>XXXXXX` that is unlinked unless released.
class temp_file {
 public:
  static result<temp_file> create(const fs::path& prefix) {
    std::string templ = prefix.string() + "XXXXXX";
    const int fd = ::mkostemp(templ.data(), O_CLOEXEC);
    if (fd < 0) return io_failure("cannot create a temporary file", templ, errno);
    return temp_file(unique_fd(fd), fs::path(templ));
  }
  temp_file(temp_file&& o) noexcept : fd_(std::move(o.fd_)), path_(std::exchange(o.path_, {})) {}
  temp_file& operator=(temp_file&&) = delete;
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  ~temp_file() {
    fd_.reset();
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  [[nodiscard]] int fd() const { return fd_.get(); }
  [[nodiscard]] const fs::path& path() const { return path_; }
  // Flushes to disk and closes (the name stays until renamed or destroyed).
  result<void> sync_and_close() {
    if (::fsync(fd_.get()) != 0) return io_failure("cannot sync", path_, errno);
    if (fd_.close() != 0) return io_failure("cannot close", path_, errno);
    return ok();
  }
  // Renames the file to `to`; afterwards the destructor leaves it alone.
  result<void> commit(const fs::path& to) {
    if (::rename(path_.c_str(), to.c_str()) != 0) {
      return io_failure(fmt::format("cannot rename {} to", path_.string()), to, errno);
    }
    path_.clear();
    return ok();
  }

 private:
  temp_file(unique_fd fd, fs::path path) : fd_(std::move(fd)), path_(std::move(path)) {}
  unique_fd fd_;
  fs::path path_;
};

enum class node_type { directory, file, symlink };

struct tree_entry {
  std::string rel;  // path relative to the packed directory, '/'-separated bytes
  node_type type;
  mode_t mode;             // & 0777
  std::uint64_t size = 0;  // regular files
  std::string target;      // symlinks
};

// Lists the tree under `dir` without following any symlink.
result<std::vector<tree_entry>> list_tree(const fs::path& dir) {
  std::vector<tree_entry> out;
  std::vector<std::string> pending{""};  // relative directories still to read
  while (!pending.empty()) {
    const std::string rel_dir = std::move(pending.back());
    pending.pop_back();
    const fs::path abs_dir = rel_dir.empty() ? dir : dir / rel_dir;
    std::error_code ec;
    for (fs::directory_iterator it(abs_dir, ec), end; it != end; it.increment(ec)) {
      if (ec) break;
      const std::string name = it->path().filename().string();
      const std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
      struct stat st {};
      if (::lstat(it->path().c_str(), &st) != 0)
        return io_failure("cannot stat", it->path(), errno);
      tree_entry e{rel, node_type::file, static_cast<mode_t>(st.st_mode & 0777)};
      if (S_ISREG(st.st_mode)) {
        e.size = static_cast<std::uint64_t>(st.st_size);
      } else if (S_ISDIR(st.st_mode)) {
        e.type = node_type::directory;
        pending.push_back(rel);
      } else if (S_ISLNK(st.st_mode)) {
        e.type = node_type::symlink;
        e.target = fs::read_symlink(it->path(), ec).string();
        if (ec) return io_failure("cannot read symlink", it->path(), ec.value());
      } else {
        return make_error(errc::archive_unsafe,
                          fmt::format("cannot pack {}: {} is a special file (device, fifo or "
                                      "socket)",
                                      dir.string(), rel));
      }
      out.push_back(std::move(e));
    }
    if (ec) return io_failure("cannot list", abs_dir, ec.value());
  }
  return out;
}

// Refuses symlinks that are absolute or lead outside the tree.
result<void> check_links(const fs::path& dir, const std::vector<tree_entry>& entries) {
  std::map<std::string, std::string> links;
  for (const auto& e : entries) {
    if (e.type != node_type::symlink) continue;
    auto comps = split_relative_path(e.rel);
    if (!comps || !resolve_link_target(*comps, e.target)) {
      return make_error(errc::archive_unsafe,
                        fmt::format("cannot pack {}: symlink {} -> {} leaves the directory",
                                    dir.string(), e.rel, e.target));
    }
    links.emplace(e.rel, e.target);
  }
  if (auto bad = find_escaping_link(links)) {
    return make_error(errc::archive_unsafe,
                      fmt::format("cannot pack {}: symlink {} -> {} leaves the directory "
                                  "through other symlinks (or loops)",
                                  dir.string(), *bad, links.at(*bad)));
  }
  return ok();
}

result<void> write_entry(struct archive* w, const fs::path& dir, const tree_entry& e,
                         std::vector<char>& buffer) {
  std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(),
                                                                             &archive_entry_free);
  if (!entry) return make_error(errc::io_error, "libarchive: out of memory");
  struct archive_entry* ae = entry.get();
  archive_entry_copy_pathname(ae, e.rel.c_str());
  archive_entry_set_perm(ae, e.mode);
  archive_entry_set_mtime(ae, 0, 0);
  archive_entry_set_uid(ae, 0);
  archive_entry_set_gid(ae, 0);
  switch (e.type) {
    case node_type::directory:
      archive_entry_set_filetype(ae, AE_IFDIR);
      archive_entry_set_size(ae, 0);
      break;
    case node_type::symlink:
      archive_entry_set_filetype(ae, AE_IFLNK);
      archive_entry_copy_symlink(ae, e.target.c_str());
      archive_entry_set_size(ae, 0);
      break;
    case node_type::file:
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_size(ae, static_cast<la_int64_t>(e.size));
      break;
  }
  const fs::path abs = dir / e.rel;
  unique_fd in;
  if (e.type == node_type::file) {
    in = unique_fd(::open(abs.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
    if (!in.valid()) return io_failure("cannot open", abs, errno);
    struct stat st {};
    if (::fstat(in.get(), &st) != 0) return io_failure("cannot stat", abs, errno);
    if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) != e.size) {
      return make_error(errc::io_error, fmt::format("{} changed while being packed", abs.string()));
    }
  }
  if (archive_write_header(w, ae) != ARCHIVE_OK) {
    return make_error(errc::io_error, fmt::format("cannot write the tar header of {}: {}",
                                                  abs.string(), archive_error_string(w)));
  }
  std::uint64_t remaining = e.type == node_type::file ? e.size : 0;
  while (remaining > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, io_chunk));
    const ssize_t n = read_full(in.get(), buffer.data(), want);
    if (n < 0) return io_failure("cannot read", abs, errno);
    if (static_cast<std::size_t>(n) != want) {
      return make_error(errc::io_error, fmt::format("{} shrank while being packed", abs.string()));
    }
    if (archive_write_data(w, buffer.data(), want) != static_cast<la_ssize_t>(want)) {
      return make_error(errc::io_error, fmt::format("cannot write the data of {} to the tar: {}",
                                                    abs.string(), archive_error_string(w)));
    }
    remaining -= want;
  }
  return ok();
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::string hex(const unsigned char* data, std::size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0xf];
  }
  return out;
}

}  // namespace

result<std::string> hash_file(const fs::path& file) {
  // Idempotent and thread-safe; selects the fastest BLAKE2b implementation.
  if (sodium_init() < 0) return make_error(errc::io_error, "libsodium failed to initialise");
  unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return io_failure("cannot open", file, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_failure("cannot stat", file, errno);
  if (!S_ISREG(st.st_mode)) {
    return make_error(errc::io_error, fmt::format("{} is not a regular file", file.string()));
  }
  crypto_generichash_state state;
  if (crypto_generichash_init(&state, nullptr, 0, hash_bytes) != 0) {
    return make_error(errc::io_error, "crypto_generichash_init failed");
  }
  std::vector<char> buffer(io_chunk);
  for (;;) {
    const ssize_t n = read_full(fd.get(), buffer.data(), buffer.size());
    if (n < 0) return io_failure("cannot read", file, errno);
    if (n == 0) break;
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(buffer.data()),
                              static_cast<unsigned long long>(n));
  }
  std::array<unsigned char, hash_bytes> digest{};
  crypto_generichash_final(&state, digest.data(), digest.size());
  return hex(digest.data(), digest.size());
}

result<void> pack_directory(const fs::path& dir, const fs::path& out_tar) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return make_error(errc::invalid_argument,
                      fmt::format("cannot pack {}: not a directory", dir.string()));
  }
  MESH_TRY(std::vector<tree_entry> entries, list_tree(dir));
  // Byte order of the whole relative path (std::string compares as unsigned
  // char); a directory always sorts before its contents since it is a prefix.
  std::sort(entries.begin(), entries.end(),
            [](const tree_entry& a, const tree_entry& b) { return a.rel < b.rel; });
  MESH_CHECK(check_links(dir, entries));

  MESH_TRY(temp_file tmp, temp_file::create(out_tar.string() + ".tmp-"));
  {
    archive_writer w(archive_write_new());
    if (!w) return make_error(errc::io_error, "libarchive: out of memory");
    // pax_restricted writes plain ustar headers and adds a pax extension only
    // for what ustar cannot hold (long names, big sizes). ASCII names come out
    // the same in every locale. Other bytes would be converted to UTF-8 from
    // the current locale (or not, and flagged), so such trees are written with
    // hdrcharset=BINARY: names stored as raw bytes, at the cost of a pax record
    // per entry. The choice depends only on the tree, never on the locale.
    const bool binary_names = std::any_of(entries.begin(), entries.end(), [](const tree_entry& e) {
      return !is_ascii(e.rel) || !is_ascii(e.target);
    });
    if (archive_write_set_format_pax_restricted(w.get()) != ARCHIVE_OK ||
        (binary_names &&
         archive_write_set_format_option(w.get(), "pax", "hdrcharset", "BINARY") != ARCHIVE_OK) ||
        archive_write_open_fd(w.get(), tmp.fd()) != ARCHIVE_OK) {
      return make_error(errc::io_error,
                        fmt::format("cannot start the tar {}: {}", tmp.path().string(),
                                    archive_error_string(w.get())));
    }
    std::vector<char> buffer(io_chunk);
    for (const auto& e : entries) MESH_CHECK(write_entry(w.get(), dir, e, buffer));
    if (archive_write_close(w.get()) != ARCHIVE_OK) {
      return make_error(errc::io_error,
                        fmt::format("cannot finish the tar {}: {}", tmp.path().string(),
                                    archive_error_string(w.get())));
    }
  }
  MESH_CHECK(tmp.sync_and_close());
  return tmp.commit(out_tar);
}

result<revision_bundle> prepare_revision(const fs::path& source, const fs::path& work_dir) {
  std::error_code ec;
  const fs::file_status st = fs::status(source, ec);
  if (ec || !fs::exists(st)) {
    return make_error(
        errc::bad_revision,
        fmt::format("revision source {} does not exist{}", source.string(),
                    ec && ec != std::errc::no_such_file_or_directory ? ": " + ec.message() : ""));
  }
  if (!fs::is_directory(st) && !fs::is_regular_file(st)) {
    return make_error(errc::bad_revision,
                      fmt::format("revision source {} is neither a directory nor a zip, tar or "
                                  "tar.gz file",
                                  source.string()));
  }
  fs::create_directories(work_dir, ec);
  if (ec) {
    return make_error(errc::io_error,
                      fmt::format("cannot create {}: {}", work_dir.string(), ec.message()));
  }
  MESH_TRY(temp_file tmp, temp_file::create(work_dir / ".incoming-"));
  if (fs::is_directory(st)) {
    // pack_directory renames its own temporary over tmp's name.
    if (auto packed = pack_directory(source, tmp.path()); !packed) {
      return packed.error().with_context(fmt::format("revision source {}", source.string()));
    }
  } else {
    unique_fd in(::open(source.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!in.valid()) return io_failure("cannot open revision source", source, errno);
    std::vector<char> buffer(io_chunk);
    for (;;) {
      const ssize_t n = read_full(in.get(), buffer.data(), buffer.size());
      if (n < 0) return io_failure("cannot read revision source", source, errno);
      if (n == 0) break;
      if (!write_full(tmp.fd(), buffer.data(), static_cast<std::size_t>(n))) {
        return io_failure("cannot write", tmp.path(), errno);
      }
    }
    MESH_CHECK(tmp.sync_and_close());
  }
  // Everything below looks at the copy only.
  auto format = detect_bundle_format(tmp.path());
  if (!format) {
    return error{format.error().code,
                 fmt::format("revision source {} is not a zip, tar or tar.gz bundle ({})",
                             source.string(), format.error().message)};
  }
  MESH_TRY(std::string id, hash_file(tmp.path()));
  revision_bundle out;
  out.id = id;
  out.format = format.value();
  out.archive = work_dir / fmt::format("{}.{}", id, to_string(out.format));
  out.size = fs::file_size(tmp.path(), ec);
  if (ec) return io_failure("cannot stat", tmp.path(), ec.value());
  MESH_CHECK(tmp.commit(out.archive));
  return out;
}

bool is_revision_id(std::string_view id) {
  return id.size() == 2 * hash_bytes && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace meshdeploy::agent

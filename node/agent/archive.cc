#include "node/agent/archive.h"

#include "node/agent/errc.h"
#include "node/agent/unique_fd.h"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <unordered_map>
#include <utility>

namespace meshdeploy::agent {

namespace fs = std::filesystem;

namespace {

// Linux resolves at most 40 symlinks in one path lookup (MAXSYMLINKS).
constexpr int max_link_hops = 40;
// NAME_MAX on every Linux filesystem we care about.
constexpr std::size_t max_component_length = 255;
constexpr std::size_t io_chunk = 64 * 1024;

struct archive_read_deleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using archive_reader = std::unique_ptr<struct archive, archive_read_deleter>;

// Entry names come from the attacker: render them quoted with control and
// non-ASCII bytes escaped (so a message cannot forge log lines or terminal
// escapes) and cut after 256 bytes.
std::string shown(std::string_view s) {
  constexpr std::size_t max_shown = 256;
  std::string out = "\"";
  for (unsigned char c : s.substr(0, max_shown)) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (s.size() > max_shown) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

std::string join(const std::vector<std::string>& comps, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n && i < comps.size(); ++i) {
    if (i) out += '/';
    out += comps[i];
  }
  return out;
}

std::string join(const std::vector<std::string>& comps) { return join(comps, comps.size()); }

std::string archive_error_text(struct archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

// Opens `path` for reading; it must be a regular file.
result<unique_fd> open_regular_file(const fs::path& path) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    return make_error(errc::io_error,
                      fmt::format("cannot open archive {}: {}", path.string(), errno_text(errno)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return make_error(errc::io_error,
                      fmt::format("cannot stat archive {}: {}", path.string(), errno_text(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(errc::io_error,
                      fmt::format("archive {} is not a regular file", path.string()));
  }
  return fd;
}

// A libarchive reader restricted to what bundles may be: tar (any dialect) or
// zip (read through its central directory), optionally gzip-compressed. Other
// formats and filters are never even offered to the input.
result<archive_reader> open_reader(int fd, const fs::path& path) {
  archive_reader a(archive_read_new());
  if (!a) return make_error(errc::io_error, "libarchive: out of memory");
  if (archive_read_support_filter_gzip(a.get()) < ARCHIVE_WARN ||
      archive_read_support_format_tar(a.get()) != ARCHIVE_OK ||
      archive_read_support_format_zip_seekable(a.get()) != ARCHIVE_OK) {
    return make_error(errc::io_error, fmt::format("libarchive setup for {}: {}", path.string(),
                                                  archive_error_text(a.get())));
  }
  if (archive_read_open_fd(a.get(), fd, io_chunk) != ARCHIVE_OK) {
    return make_error(errc::archive_unreadable,
                      fmt::format("{} is not a zip, tar or tar.gz archive: {}", path.string(),
                                  archive_error_text(a.get())));
  }
  return a;
}

// Which bundle format libarchive found, once it has read a header. Only
// tar, gzip(tar) and zip qualify: gzip around a zip, or gzip twice, do not.
std::optional<bundle_format> classify(struct archive* a, int header_status, int fd) {
  const int filters = archive_filter_count(a);
  const int outer = archive_filter_code(a, 0);
  bool gzip = false;
  if (filters == 2 && outer == ARCHIVE_FILTER_GZIP) {
    gzip = true;
  } else if (filters != 1 || outer != ARCHIVE_FILTER_NONE) {
    return std::nullopt;
  }
  int base = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
  if (base == 0 && header_status == ARCHIVE_EOF) {
    // An archive without entries: the format reader reached its end marker
    // before naming its dialect. Decide from the first bytes of the file.
    unsigned char magic[2] = {0, 0};
    if (::pread(fd, magic, sizeof magic, 0) == 2 && magic[0] == 'P' && magic[1] == 'K') {
      base = ARCHIVE_FORMAT_ZIP;
    } else {
      base = ARCHIVE_FORMAT_TAR;
    }
  }
  if (base == ARCHIVE_FORMAT_TAR) return gzip ? bundle_format::tgz : bundle_format::tar;
  if (base == ARCHIVE_FORMAT_ZIP && !gzip) return bundle_format::zip;
  return std::nullopt;
}

// Extraction state for one archive. All filesystem access is relative to the
// destination's directory descriptor, one component at a time with
// O_NOFOLLOW, so no symlink (extracted or planted by someone else) is ever
// followed and nothing can be created outside the destination.
class extractor {
 public:
  extractor(const fs::path& archive, int dest_fd, const extract_limits& limits)
      : archive_(archive), dest_fd_(dest_fd), limits_(limits), buffer_(io_chunk) {}
  extractor(const extractor&) = delete;
  extractor& operator=(const extractor&) = delete;

  result<void> run(struct archive* a, int archive_fd) {
    for (;;) {
      struct archive_entry* entry = nullptr;
      const int r = archive_read_next_header(a, &entry);
      if (entries_ == 0 && (r == ARCHIVE_OK || r == ARCHIVE_WARN || r == ARCHIVE_EOF) &&
          !classify(a, r, archive_fd)) {
        return make_error(errc::archive_unreadable,
                          fmt::format("{} is not a zip, tar or tar.gz archive", archive_.string()));
      }
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        return make_error(errc::archive_unreadable,
                          fmt::format("{}: cannot read the header of entry #{}: {}",
                                      archive_.string(), entries_ + 1, archive_error_text(a)));
      }
      ++entries_;
      MESH_CHECK(extract_entry(a, entry));
    }
    if (auto bad = find_escaping_link(links_)) {
      return unsafe(*bad, fmt::format("symlink to {} resolves outside the destination through "
                                      "other extracted symlinks (or loops)",
                                      shown(links_.at(*bad))));
    }
    return apply_directory_modes();
  }

 private:
  enum class kind { directory, file, symlink };
  struct node {
    kind type;
    mode_t mode;  // final mode, directories only
  };

  error unsafe(std::string_view entry, std::string_view what) const {
    return make_error(errc::archive_unsafe,
                      fmt::format("{}: entry {}: {}", archive_.string(), shown(entry), what));
  }
  error too_large(std::string_view entry, std::string_view what) const {
    return make_error(errc::archive_too_large,
                      fmt::format("{}: entry {}: {}", archive_.string(), shown(entry), what));
  }
  error io_failure(std::string_view entry, std::string_view what, int e) const {
    return make_error(errc::io_error, fmt::format("{}: entry {}: {}: {}", archive_.string(),
                                                  shown(entry), what, errno_text(e)));
  }

  result<void> extract_entry(struct archive* a, struct archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    if (raw == nullptr) raw = archive_entry_pathname_utf8(e);
    if (raw == nullptr || *raw == '\0') {
      return unsafe(fmt::format("#{}", entries_), "entry has no path");
    }
    const std::string name = raw;
    if (entries_ > limits_.max_entries) {
      return too_large(name, fmt::format("entry #{} is over the limit of {} entries", entries_,
                                         limits_.max_entries));
    }
    if (name.size() > limits_.max_path_length) {
      return too_large(name, fmt::format("path is {} bytes, over the limit of {}", name.size(),
                                         limits_.max_path_length));
    }
    if (name.front() == '/') return unsafe(name, "absolute path refused");
    auto comps = split_relative_path(name);
    if (!comps) return unsafe(name, "\"..\" path component refused");
    for (const auto& c : *comps) {
      if (c.size() > max_component_length) {
        return too_large(
            name, fmt::format("a path component is longer than {} bytes", max_component_length));
      }
    }

    // Claimed sizes are checked too: data the reader skips (of entries we do
    // not write) is still decompressed, so it must not be a bomb either.
    if (archive_entry_size_is_set(e)) {
      const la_int64_t claimed = archive_entry_size(e);
      if (claimed < 0) return unsafe(name, "negative size in header");
      const auto size = static_cast<std::uint64_t>(claimed);
      if (size > limits_.max_entry_bytes) {
        return too_large(name, fmt::format("header declares {} bytes, over the per-entry limit "
                                           "of {}",
                                           size, limits_.max_entry_bytes));
      }
      claimed_total_ += size;
      if (claimed_total_ > limits_.max_total_bytes) {
        return too_large(name, fmt::format("headers declare more than {} bytes in total",
                                           limits_.max_total_bytes));
      }
    }

    const char* hardlink = archive_entry_hardlink(e);
    if (hardlink == nullptr) hardlink = archive_entry_hardlink_utf8(e);
    if (hardlink != nullptr) return extract_hardlink(name, *comps, hardlink);

    switch (archive_entry_filetype(e)) {
      case AE_IFREG:
        return extract_file(a, e, name, *comps);
      case AE_IFDIR:
        return extract_directory(e, name, *comps);
      case AE_IFLNK:
        return extract_symlink(e, name, *comps);
      case AE_IFCHR:
        return unsafe(name, "character device entries are refused");
      case AE_IFBLK:
        return unsafe(name, "block device entries are refused");
      case AE_IFIFO:
        return unsafe(name, "fifo entries are refused");
      case AE_IFSOCK:
        return unsafe(name, "socket entries are refused");
      default:
        return unsafe(name, fmt::format("unknown entry type {:o} refused",
                                        static_cast<unsigned>(archive_entry_filetype(e))));
    }
  }

  // Refuses a second entry at an existing path (directories may repeat).
  result<void> check_new(std::string_view name, const std::string& joined) const {
    if (nodes_.contains(joined)) return unsafe(name, "path already extracted by an earlier entry");
    return ok();
  }

  // Opens the directory made of the first `n` components, creating missing
  // ones (mode 0700 while extracting, 0755 at the end) when `create`. Refuses
  // to go through anything but a directory extracted from this archive.
  result<unique_fd> open_directory(std::string_view name, const std::vector<std::string>& comps,
                                   std::size_t n, bool create) {
    unique_fd current;
    for (std::size_t i = 0; i < n; ++i) {
      const int at = current.valid() ? current.get() : dest_fd_;
      const std::string prefix = join(comps, i + 1);
      auto it = nodes_.find(prefix);
      if (it == nodes_.end()) {
        if (!create) return unsafe(name, fmt::format("{} does not exist", shown(prefix)));
        if (::mkdirat(at, comps[i].c_str(), 0700) != 0) {
          return io_failure(name, fmt::format("mkdir {}", shown(prefix)), errno);
        }
        nodes_.emplace(prefix, node{kind::directory, 0755});
      } else if (it->second.type == kind::symlink) {
        return unsafe(name, fmt::format("would be written through the symlink {}", shown(prefix)));
      } else if (it->second.type != kind::directory) {
        return unsafe(name, fmt::format("{} is a file, not a directory", shown(prefix)));
      }
      unique_fd next(
          ::openat(at, comps[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next.valid()) return io_failure(name, fmt::format("open {}", shown(prefix)), errno);
      current = std::move(next);
    }
    if (!current.valid()) {
      current = unique_fd(::fcntl(dest_fd_, F_DUPFD_CLOEXEC, 0));
      if (!current.valid()) return io_failure(name, "dup destination", errno);
    }
    return current;
  }

  result<void> extract_directory(struct archive_entry* e, std::string_view name,
                                 const std::vector<std::string>& comps) {
    if (comps.empty()) return ok();  // "./": the destination itself
    const std::string joined = join(comps);
    // Owner rwx is always kept so the tree can be walked and removed.
    const mode_t mode = (archive_entry_perm(e) & 0777) | 0700;
    if (auto it = nodes_.find(joined); it != nodes_.end()) {
      if (it->second.type != kind::directory) {
        return unsafe(name, "path already extracted by an earlier entry");
      }
      it->second.mode = mode;
      return ok();
    }
    MESH_TRY(unique_fd parent, open_directory(name, comps, comps.size() - 1, true));
    if (::mkdirat(parent.get(), comps.back().c_str(), 0700) != 0) {
      return io_failure(name, "mkdir", errno);
    }
    nodes_.emplace(joined, node{kind::directory, mode});
    return ok();
  }

  result<void> extract_file(struct archive* a, struct archive_entry* e, std::string_view name,
                            const std::vector<std::string>& comps) {
    if (comps.empty()) return unsafe(name, "a file cannot replace the destination directory");
    const std::string joined = join(comps);
    MESH_CHECK(check_new(name, joined));
    MESH_TRY(unique_fd parent, open_directory(name, comps, comps.size() - 1, true));
    unique_fd out(::openat(parent.get(), comps.back().c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.valid()) return io_failure(name, "create", errno);
    nodes_.emplace(joined, node{kind::file, 0});

    const bool size_known = archive_entry_size_is_set(e);
    const auto claimed = static_cast<std::uint64_t>(size_known ? archive_entry_size(e) : 0);
    std::uint64_t written = 0;
    for (;;) {
      const la_ssize_t n = archive_read_data(a, buffer_.data(), buffer_.size());
      if (n == 0) break;
      if (n < 0) {
        return make_error(errc::archive_unreadable,
                          fmt::format("{}: entry {}: cannot read data: {}", archive_.string(),
                                      shown(name), archive_error_text(a)));
      }
      const auto got = static_cast<std::uint64_t>(n);
      // Limits are checked before anything is written, on real bytes.
      if (size_known && written + got > claimed) {
        return unsafe(name,
                      fmt::format("data is longer than the {} bytes its header declares", claimed));
      }
      if (written + got > limits_.max_entry_bytes) {
        return too_large(name, fmt::format("more than {} bytes of data (per-entry limit)",
                                           limits_.max_entry_bytes));
      }
      if (total_ + got > limits_.max_total_bytes) {
        return too_large(name, fmt::format("archive expands to more than {} bytes (total limit)",
                                           limits_.max_total_bytes));
      }
      MESH_CHECK(write_all(out.get(), name, buffer_.data(), static_cast<std::size_t>(n)));
      written += got;
      total_ += got;
    }
    // Permission bits only: no setuid/setgid/sticky from an archive.
    if (::fchmod(out.get(), archive_entry_perm(e) & 0777) != 0) {
      return io_failure(name, "chmod", errno);
    }
    if (out.close() != 0) return io_failure(name, "close", errno);
    return ok();
  }

  result<void> write_all(int fd, std::string_view name, const char* data, std::size_t size) {
    while (size > 0) {
      const ssize_t w = ::write(fd, data, size);
      if (w < 0) {
        if (errno == EINTR) continue;
        return io_failure(name, "write", errno);
      }
      data += w;
      size -= static_cast<std::size_t>(w);
    }
    return ok();
  }

  result<void> extract_symlink(struct archive_entry* e, std::string_view name,
                               const std::vector<std::string>& comps) {
    if (comps.empty()) return unsafe(name, "a symlink cannot replace the destination directory");
    const char* raw = archive_entry_symlink(e);
    if (raw == nullptr) raw = archive_entry_symlink_utf8(e);
    if (raw == nullptr || *raw == '\0') return unsafe(name, "symlink without a target");
    const std::string target = raw;
    if (target.size() > limits_.max_path_length) {
      return too_large(name, fmt::format("symlink target is {} bytes, over the limit of {}",
                                         target.size(), limits_.max_path_length));
    }
    if (target.front() == '/') {
      return unsafe(name, fmt::format("symlink to the absolute path {} refused", shown(target)));
    }
    if (!resolve_link_target(comps, target)) {
      return unsafe(name,
                    fmt::format("symlink to {} leaves the destination directory", shown(target)));
    }
    const std::string joined = join(comps);
    MESH_CHECK(check_new(name, joined));
    MESH_TRY(unique_fd parent, open_directory(name, comps, comps.size() - 1, true));
    if (::symlinkat(target.c_str(), parent.get(), comps.back().c_str()) != 0) {
      return io_failure(name, "symlink", errno);
    }
    nodes_.emplace(joined, node{kind::symlink, 0});
    links_.emplace(joined, target);
    return ok();
  }

  // Tar hardlink targets are paths from the archive root (not from the link's
  // directory); they may only name a regular file this archive already
  // produced, so a hardlink can neither reach outside nor alias a symlink.
  result<void> extract_hardlink(std::string_view name, const std::vector<std::string>& comps,
                                const std::string& target) {
    if (comps.empty()) return unsafe(name, "a hardlink cannot replace the destination directory");
    if (target.size() > limits_.max_path_length) {
      return too_large(name, fmt::format("hardlink target is {} bytes, over the limit of {}",
                                         target.size(), limits_.max_path_length));
    }
    auto tcomps = split_relative_path(target);
    if (!tcomps || tcomps->empty()) {
      return unsafe(name,
                    fmt::format("hardlink to {} leaves the destination directory", shown(target)));
    }
    const std::string tjoined = join(*tcomps);
    auto it = nodes_.find(tjoined);
    if (it == nodes_.end() || it->second.type != kind::file) {
      return unsafe(name, fmt::format("hardlink to {}, which is not a regular file extracted "
                                      "earlier from this archive",
                                      shown(target)));
    }
    const std::string joined = join(comps);
    MESH_CHECK(check_new(name, joined));
    MESH_TRY(unique_fd tparent, open_directory(name, *tcomps, tcomps->size() - 1, false));
    MESH_TRY(unique_fd parent, open_directory(name, comps, comps.size() - 1, true));
    // Flags 0: never follow a symlink at the target (it is a file anyway).
    if (::linkat(tparent.get(), tcomps->back().c_str(), parent.get(), comps.back().c_str(), 0) !=
        0) {
      return io_failure(name, "link", errno);
    }
    nodes_.emplace(joined, node{kind::file, 0});
    return ok();
  }

  // Directories stay 0700 while extracting (so a read-only directory entry
  // cannot block its own children); their final modes are applied last.
  result<void> apply_directory_modes() {
    for (const auto& [path, n] : nodes_) {
      if (n.type != kind::directory || n.mode == 0700) continue;
      auto comps = split_relative_path(path);
      MESH_TRY(unique_fd dir, open_directory(path, *comps, comps->size(), false));
      if (::fchmod(dir.get(), n.mode) != 0) return io_failure(path, "chmod", errno);
    }
    return ok();
  }

  const fs::path& archive_;
  int dest_fd_;  // borrowed
  const extract_limits& limits_;
  std::vector<char> buffer_;
  std::uint64_t entries_ = 0;
  std::uint64_t total_ = 0;          // bytes actually written
  std::uint64_t claimed_total_ = 0;  // bytes declared by headers
  std::unordered_map<std::string, node> nodes_;
  std::map<std::string, std::string> links_;
};

// Removes everything inside `dir` (never following symlinks).
std::error_code empty_directory(const fs::path& dir) {
  std::error_code ec;
  std::error_code first;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code rm;
    fs::remove_all(it->path(), rm);
    if (rm && !first) first = rm;
  }
  return first ? first : ec;
}

}  // namespace

std::string_view to_string(bundle_format f) {
  switch (f) {
    case bundle_format::tar:
      return "tar";
    case bundle_format::tgz:
      return "tgz";
    case bundle_format::zip:
      return "zip";
  }
  return "unknown";
}

std::optional<bundle_format> parse_bundle_format(std::string_view s) {
  if (s == "tar") return bundle_format::tar;
  if (s == "tgz" || s == "tar.gz") return bundle_format::tgz;
  if (s == "zip") return bundle_format::zip;
  return std::nullopt;
}

std::optional<std::vector<std::string>> split_relative_path(std::string_view path) {
  if (!path.empty() && path.front() == '/') return std::nullopt;
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view c = path.substr(start, end - start);
    if (c == "..") return std::nullopt;
    if (!c.empty() && c != ".") out.emplace_back(c);
    start = end + 1;
  }
  return out;
}

std::optional<std::vector<std::string>> resolve_link_target(const std::vector<std::string>& link,
                                                            std::string_view target) {
  if (target.empty() || target.front() == '/' || link.empty()) return std::nullopt;
  std::vector<std::string> stack(link.begin(), link.end() - 1);
  std::size_t start = 0;
  while (start <= target.size()) {
    std::size_t end = target.find('/', start);
    if (end == std::string_view::npos) end = target.size();
    const std::string_view c = target.substr(start, end - start);
    if (c == "..") {
      if (stack.empty()) return std::nullopt;
      stack.pop_back();
    } else if (!c.empty() && c != ".") {
      stack.emplace_back(c);
    }
    start = end + 1;
  }
  return stack;
}

std::optional<std::string> find_escaping_link(const std::map<std::string, std::string>& links) {
  auto split_raw = [](std::string_view s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= s.size()) {
      std::size_t end = s.find('/', start);
      if (end == std::string_view::npos) end = s.size();
      out.emplace_back(s.substr(start, end - start));
      start = end + 1;
    }
    return out;
  };
  for (const auto& [path, first_target] : links) {
    auto link_comps = split_relative_path(path);
    if (!link_comps || link_comps->empty()) return path;
    std::vector<std::string> stack(link_comps->begin(), link_comps->end() - 1);
    if (first_target.empty() || first_target.front() == '/') return path;
    auto pending_vec = split_raw(first_target);
    std::deque<std::string> pending(pending_vec.begin(), pending_vec.end());
    int hops = 1;
    bool escapes = false;
    while (!pending.empty() && !escapes) {
      std::string c = std::move(pending.front());
      pending.pop_front();
      if (c.empty() || c == ".") continue;
      if (c == "..") {
        if (stack.empty()) {
          escapes = true;
        } else {
          stack.pop_back();
        }
        continue;
      }
      stack.push_back(std::move(c));
      auto it = links.find(join(stack));
      if (it == links.end()) continue;
      // The component is itself a link: replace it by its target, as the
      // kernel does, before looking at the components that follow.
      if (++hops > max_link_hops || it->second.empty() || it->second.front() == '/') {
        escapes = true;
        continue;
      }
      stack.pop_back();
      auto next = split_raw(it->second);
      pending.insert(pending.begin(), next.begin(), next.end());
    }
    if (escapes) return path;
  }
  return std::nullopt;
}

result<bundle_format> detect_bundle_format(const fs::path& archive) {
  MESH_TRY(unique_fd fd, open_regular_file(archive));
  MESH_TRY(archive_reader a, open_reader(fd.get(), archive));
  struct archive_entry* entry = nullptr;
  const int r = archive_read_next_header(a.get(), &entry);
  if (r == ARCHIVE_OK || r == ARCHIVE_WARN || r == ARCHIVE_EOF) {
    if (auto f = classify(a.get(), r, fd.get())) return *f;
    return make_error(errc::archive_unreadable,
                      fmt::format("{} is not a zip, tar or tar.gz archive", archive.string()));
  }
  return make_error(errc::archive_unreadable,
                    fmt::format("{} is not a zip, tar or tar.gz archive: {}", archive.string(),
                                archive_error_text(a.get())));
}

result<void> extract_archive(const fs::path& archive, const fs::path& dest_dir,
                             const extract_limits& limits) {
  unique_fd dest(::open(dest_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dest.valid()) {
    return make_error(errc::invalid_argument,
                      fmt::format("extract destination {} is not an existing directory: {}",
                                  dest_dir.string(), errno_text(errno)));
  }
  {
    std::error_code ec;
    if (fs::directory_iterator(dest_dir, ec) != fs::directory_iterator() || ec) {
      return make_error(errc::invalid_argument,
                        fmt::format("extract destination {} is not empty{}", dest_dir.string(),
                                    ec ? ": " + ec.message() : ""));
    }
  }
  auto extracted = [&]() -> result<void> {
    MESH_TRY(unique_fd fd, open_regular_file(archive));
    MESH_TRY(archive_reader a, open_reader(fd.get(), archive));
    extractor x(archive, dest.get(), limits);
    return x.run(a.get(), fd.get());
  }();
  if (extracted) return ok();
  // Leave no partial tree behind.
  if (auto ec = empty_directory(dest_dir)) {
    return error{extracted.error().code,
                 fmt::format("{} (cleanup of {} also failed: {})", extracted.error().message,
                             dest_dir.string(), ec.message())};
  }
  return extracted;
}

}  // namespace meshdeploy::agent

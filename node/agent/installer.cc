#include "node/agent/installer.h"

#include "node/agent/errc.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>
#include <system_error>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace meshdeploy::agent {
namespace fs = std::filesystem;
namespace {

// At most this many conflicts are spelled out in an install_conflict message.
constexpr std::size_t max_listed_conflicts = 20;
// Attempts at finding an unused temporary name next to a destination.
constexpr int max_temp_attempts = 16;

std::string sys_error(int e) { return std::generic_category().message(e); }

error io_failure(std::string_view what, const fs::path& p, int e) {
  return make_error(errc::io_error, fmt::format("{} {}: {}", what, p.string(), sys_error(e)));
}

void emit(const install_log& log, std::string_view line) {
  if (log) log(line);
}

// Splits `p` on '/', dropping empty and "." components. nullopt when a
// component is "..".
std::optional<std::vector<std::string_view>> components(std::string_view p) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos <= p.size()) {
    std::size_t next = p.find('/', pos);
    if (next == std::string_view::npos) next = p.size();
    std::string_view part = p.substr(pos, next - pos);
    if (part == "..") return std::nullopt;
    if (!part.empty() && part != ".") out.push_back(part);
    pos = next + 1;
  }
  return out;
}

std::string join_host(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (out != "/") out += '/';
  out += name;
  return out;
}

// Closes a file descriptor on scope exit unless released.
class fd_guard {
 public:
  explicit fd_guard(int fd) : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int get() const { return fd_; }
  // Closes now and reports close()'s errno (0 on success).
  int close_now() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

// Unlinks a temporary file on scope exit unless it was renamed into place.
class temp_guard {
 public:
  explicit temp_guard(fs::path p) : path_(std::move(p)) {}
  ~temp_guard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  temp_guard(const temp_guard&) = delete;
  temp_guard& operator=(const temp_guard&) = delete;
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

std::string random_suffix() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

fs::path temp_name_for(const fs::path& dst) {
  // Short and fixed-length so a destination name of up to NAME_MAX still
  // gets a valid temporary name; hidden so directory listings skip it.
  return dst.parent_path() / (".meshdeploy-" + random_suffix());
}

// Moves `tmp` to `dst`. Without `replace`, an entry that appeared at `dst`
// since the plan is never clobbered (RENAME_NOREPLACE).
result<void> rename_into_place(const fs::path& tmp, const fs::path& dst, bool replace) {
  if (replace) {
    if (::rename(tmp.c_str(), dst.c_str()) != 0)
      return io_failure("cannot rename into", dst, errno);
    return ok();
  }
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dst.c_str(), RENAME_NOREPLACE) == 0) return ok();
  int e = errno;
  if (e == EEXIST) {
    return make_error(
        errc::install_conflict,
        fmt::format("{} appeared on the host while the install was running", dst.string()));
  }
  if (e != EINVAL && e != ENOSYS) return io_failure("cannot rename into", dst, e);
  // The filesystem lacks RENAME_NOREPLACE: check, then rename (racy but rare).
  struct stat st;
  if (::lstat(dst.c_str(), &st) == 0) {
    return make_error(
        errc::install_conflict,
        fmt::format("{} appeared on the host while the install was running", dst.string()));
  }
  if (::rename(tmp.c_str(), dst.c_str()) != 0) return io_failure("cannot rename into", dst, errno);
  return ok();
}

// Copies the bytes of `in` to `out` from their current offsets to EOF.
result<void> copy_bytes(int in, int out, const fs::path& src, const fs::path& dst) {
  bool use_copy_range = true;
  for (;;) {  // ends at EOF of `in` (or on error)
    if (use_copy_range) {
      ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, std::size_t{1} << 30, 0);
      if (n > 0) continue;
      if (n == 0) return ok();
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
          errno == EBADF) {
        use_copy_range = false;  // fall back to read/write from the current offsets
        continue;
      }
      return io_failure("cannot copy into", dst, errno);
    }
    std::array<char, 128 * 1024> buf;
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n == 0) return ok();
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_failure("cannot read", src, errno);
    }
    const char* p = buf.data();
    std::size_t left = static_cast<std::size_t>(n);
    while (left > 0) {  // each round writes at least one byte or fails
      ssize_t w = ::write(out, p, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        return io_failure("cannot write", dst, errno);
      }
      p += w;
      left -= static_cast<std::size_t>(w);
    }
  }
}

// Writes a copy of regular file `src` at `dst` through a temporary file in
// the same directory, with `mode` and the source's mtime.
result<void> copy_file_atomic(const fs::path& src, const fs::path& dst, mode_t mode, bool replace) {
  fd_guard in(::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (in.get() < 0) return io_failure("cannot open revision file", src, errno);
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return io_failure("cannot stat revision file", src, errno);
  if (!S_ISREG(st.st_mode)) {
    return make_error(
        errc::io_error,
        fmt::format("revision file {} changed type during the install", src.string()));
  }

  fs::path tmp;
  int out_fd = -1;
  for (int attempt = 0; attempt < max_temp_attempts && out_fd < 0; ++attempt) {
    tmp = temp_name_for(dst);
    out_fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out_fd < 0 && errno != EEXIST)
      return io_failure("cannot create a file in", dst.parent_path(), errno);
  }
  if (out_fd < 0) return io_failure("cannot create a temporary file in", dst.parent_path(), EEXIST);
  fd_guard out(out_fd);
  temp_guard cleanup(tmp);

  MESH_CHECK(copy_bytes(in.get(), out.get(), src, dst));
  if (::fchmod(out.get(), mode) != 0) return io_failure("cannot chmod", tmp, errno);
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::futimens(out.get(), times) != 0) return io_failure("cannot set the times of", tmp, errno);
  if (int e = out.close_now(); e != 0) return io_failure("cannot write", tmp, e);
  MESH_CHECK(rename_into_place(tmp, dst, replace));
  cleanup.release();
  return ok();
}

// Recreates symlink `src` at `dst` (same target text) through a temporary
// link in the same directory.
result<void> copy_symlink_atomic(const fs::path& src, const fs::path& dst, bool replace) {
  std::array<char, 4097> buf;
  ssize_t n = ::readlink(src.c_str(), buf.data(), buf.size());
  if (n < 0) return io_failure("cannot read symlink", src, errno);
  if (static_cast<std::size_t>(n) == buf.size()) {
    return make_error(errc::bad_revision,
                      fmt::format("symlink {} has a target longer than 4096 bytes", src.string()));
  }
  std::string target(buf.data(), static_cast<std::size_t>(n));

  fs::path tmp;
  bool made = false;
  for (int attempt = 0; attempt < max_temp_attempts && !made; ++attempt) {
    tmp = temp_name_for(dst);
    if (::symlink(target.c_str(), tmp.c_str()) == 0) {
      made = true;
    } else if (errno != EEXIST) {
      return io_failure("cannot create a symlink in", dst.parent_path(), errno);
    }
  }
  if (!made) return io_failure("cannot create a temporary symlink in", dst.parent_path(), EEXIST);
  temp_guard cleanup(tmp);
  MESH_CHECK(rename_into_place(tmp, dst, replace));
  cleanup.release();
  return ok();
}

enum class step_kind { make_dir, copy_file, copy_symlink };

// One write of the install, decided before anything is written.
struct step {
  step_kind kind = step_kind::make_dir;
  std::string host;    // normalised host path
  fs::path source;     // revision path (files and symlinks)
  mode_t mode = 0755;  // final mode (directories and files)
  bool replace = false;
};

// What the plan puts at a host path, to catch mappings that collide.
struct planned_path {
  bool directory = false;
  int line = 0;
  std::string source;  // revision-relative source of a file ("" for directories)
};

// Builds the list of steps for all mappings, checking the host as it is now.
class planner {
 public:
  planner(const fs::path& revision_root, const fs::path& revision_canonical,
          const fs::path& install_root, const fs::path& root_canonical,
          file_exists_behavior behavior, const install_log& log)
      : revision_root_(revision_root),
        revision_canonical_(revision_canonical),
        install_root_(install_root),
        root_canonical_(root_canonical),
        behavior_(behavior),
        log_(log) {}
  planner(const planner&) = delete;
  planner& operator=(const planner&) = delete;

  // `where` prefixes messages: "appspec.yml:7: files[0]".
  result<void> add_mapping(const file_mapping& m, const std::string& where);

  const std::vector<step>& steps() const { return steps_; }
  const std::vector<std::string>& conflicts() const { return conflicts_; }
  std::size_t existing_files() const { return existing_files_; }
  std::size_t retained() const { return retained_; }

 private:
  result<void> ensure_parents(const std::string& host, int line);
  result<void> plan_dir(const std::string& host, mode_t mode, int line);
  result<void> plan_leaf(const fs::path& src, const struct stat& st, const std::string& host,
                         int line);
  result<void> walk(const fs::path& src_dir, const std::string& host_dir, int line);
  std::string relative_source(const fs::path& src) const {
    return src.lexically_relative(revision_root_).generic_string();
  }

  const fs::path& revision_root_;
  const fs::path& revision_canonical_;
  const fs::path& install_root_;
  const fs::path& root_canonical_;
  file_exists_behavior behavior_;
  const install_log& log_;
  std::vector<step> steps_;
  std::unordered_map<std::string, planned_path> planned_;
  std::unordered_set<std::string> existing_dirs_;  // host dirs already on the host
  std::vector<std::string> conflicts_;
  std::size_t existing_files_ = 0;  // DISALLOW conflicts among conflicts_
  std::size_t retained_ = 0;
};

result<void> planner::add_mapping(const file_mapping& m, const std::string& where) {
  auto dest_r = normalize_host_path(m.destination);
  if (!dest_r) {
    return make_error(errc::appspec_invalid,
                      fmt::format("{}.destination: {}", where, dest_r.error().message));
  }
  const std::string& dest = dest_r.value();
  auto parts = components(m.source);
  if (!parts) {
    return make_error(errc::appspec_invalid,
                      fmt::format("{}.source: \"{}\" contains \"..\"; sources are relative to the "
                                  "revision root",
                                  where, m.source));
  }
  fs::path src = revision_root_;
  for (std::string_view p : *parts) src /= p;

  struct stat st;
  if (::lstat(src.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return make_error(
          errc::appspec_invalid,
          fmt::format("{}.source: \"{}\" does not exist in the revision", where, m.source));
    }
    return io_failure("cannot inspect", src, errno);
  }
  if (!parts->empty()) {
    // A directory symlink in the middle of the source could lead anywhere.
    if (auto inside = check_inside_root(revision_canonical_, src.parent_path()); !inside) {
      return make_error(errc::appspec_invalid,
                        fmt::format("{}.source: \"{}\" leads outside the revision through a "
                                    "symlink",
                                    where, m.source));
    }
  }
  emit(log_, fmt::format("files (line {}): copying \"{}\" to {}", m.line, m.source, dest));

  if (S_ISDIR(st.st_mode)) {
    MESH_CHECK(ensure_parents(dest, m.line));
    MESH_CHECK(plan_dir(dest, 0755, m.line));
    return walk(src, dest, m.line);
  }
  if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
    std::string target = join_host(dest, parts->back());
    MESH_CHECK(ensure_parents(target, m.line));
    return plan_leaf(src, st, target, m.line);
  }
  return make_error(errc::bad_revision,
                    fmt::format("{}.source: \"{}\" is a special file (device, fifo or socket); "
                                "only files, directories and symlinks can be installed",
                                where, m.source));
}

result<void> planner::ensure_parents(const std::string& host, int line) {
  // Every proper prefix of `host` except "/" (the install root must exist).
  for (std::size_t pos = host.find('/', 1); pos != std::string::npos;
       pos = host.find('/', pos + 1)) {
    MESH_CHECK(plan_dir(host.substr(0, pos), 0755, line));
  }
  return ok();
}

result<void> planner::plan_dir(const std::string& host, mode_t mode, int line) {
  if (auto it = planned_.find(host); it != planned_.end()) {
    if (!it->second.directory) {
      conflicts_.push_back(fmt::format(
          "{}: the files entry at line {} needs a directory here, but the entry at line {} "
          "installs the file \"{}\" at this path",
          host, line, it->second.line, it->second.source));
    }
    return ok();
  }
  if (existing_dirs_.contains(host)) return ok();

  const fs::path real = real_path(install_root_, host);
  struct stat st;
  if (::lstat(real.c_str(), &st) == 0) {
    struct stat target;
    if (S_ISDIR(st.st_mode)) {
      existing_dirs_.insert(host);
      return ok();
    }
    if (S_ISLNK(st.st_mode) && ::stat(real.c_str(), &target) == 0 && S_ISDIR(target.st_mode)) {
      // A symlink to a directory is used as that directory (as CodeDeploy
      // does), provided it stays inside the install root.
      existing_dirs_.insert(host);
      if (auto inside = check_inside_root(root_canonical_, real); !inside) {
        conflicts_.push_back(fmt::format("{}: {}", host, inside.error().message));
      }
      return ok();
    }
    conflicts_.push_back(fmt::format(
        "{}: exists on the host and is not a directory, but the files entry at line {} needs a "
        "directory here",
        host, line));
    existing_dirs_.insert(host);  // one complaint per path
    return ok();
  }
  if (errno != ENOENT && errno != ENOTDIR) return io_failure("cannot inspect", real, errno);
  planned_.emplace(host, planned_path{true, line, {}});
  steps_.push_back(step{step_kind::make_dir, host, {}, mode, false});
  return ok();
}

result<void> planner::plan_leaf(const fs::path& src, const struct stat& st, const std::string& host,
                                int line) {
  if (auto it = planned_.find(host); it != planned_.end()) {
    if (it->second.directory) {
      conflicts_.push_back(fmt::format(
          "{}: the files entry at line {} installs the file \"{}\" where the entry at line {} "
          "creates a directory",
          host, line, relative_source(src), it->second.line));
    } else {
      conflicts_.push_back(fmt::format(
          "{}: installed twice, from \"{}\" (files entry at line {}) and from \"{}\" (line {}); "
          "remove one of them from the appspec",
          host, it->second.source, it->second.line, relative_source(src), line));
    }
    return ok();
  }
  planned_.emplace(host, planned_path{false, line, relative_source(src)});

  const fs::path real = real_path(install_root_, host);
  bool replace = false;
  struct stat existing;
  if (::lstat(real.c_str(), &existing) == 0) {
    if (S_ISDIR(existing.st_mode)) {
      if (behavior_ == file_exists_behavior::retain) {
        ++retained_;
        emit(log_, fmt::format("kept the existing directory {} where the revision has a file "
                               "(file_exists_behavior RETAIN)",
                               host));
        return ok();
      }
      conflicts_.push_back(fmt::format(
          "{}: is a directory on the host, but the revision installs a file at this path", host));
      return ok();
    }
    switch (behavior_) {
      case file_exists_behavior::disallow:
        ++existing_files_;
        conflicts_.push_back(
            fmt::format("{}: already exists and was not installed by the previous deployment of "
                        "this group",
                        host));
        return ok();
      case file_exists_behavior::retain:
        ++retained_;
        emit(log_, fmt::format("kept the existing {} (file_exists_behavior RETAIN)", host));
        return ok();
      case file_exists_behavior::overwrite:
        replace = true;
        break;
    }
  } else if (errno != ENOENT && errno != ENOTDIR) {
    return io_failure("cannot inspect", real, errno);
  }
  steps_.push_back(step{S_ISLNK(st.st_mode) ? step_kind::copy_symlink : step_kind::copy_file, host,
                        src, static_cast<mode_t>(st.st_mode & 07777), replace});
  return ok();
}

result<void> planner::walk(const fs::path& src_dir, const std::string& host_dir, int line) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(src_dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return io_failure("cannot list", src_dir, ec.value());
  std::sort(names.begin(), names.end());

  for (const std::string& name : names) {
    const fs::path src = src_dir / name;
    const std::string host = join_host(host_dir, name);
    struct stat st;
    if (::lstat(src.c_str(), &st) != 0) return io_failure("cannot inspect", src, errno);
    if (S_ISDIR(st.st_mode)) {
      MESH_CHECK(plan_dir(host, st.st_mode & 07777, line));
      MESH_CHECK(walk(src, host, line));  // depth bounded by the revision's path length
    } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
      MESH_CHECK(plan_leaf(src, st, host, line));
    } else {
      return make_error(errc::bad_revision,
                        fmt::format("revision entry \"{}\" is a special file (device, fifo or "
                                    "socket); only files, directories and symlinks can be "
                                    "installed",
                                    relative_source(src)));
    }
  }
  return ok();
}

std::string conflict_message(const planner& plan, const fs::path& install_root) {
  const auto& all = plan.conflicts();
  std::string msg = fmt::format("Install refused before changing anything under install root {}: ",
                                install_root.string());
  for (std::size_t i = 0; i < all.size() && i < max_listed_conflicts; ++i) {
    if (i > 0) msg += "; ";
    msg += all[i];
  }
  if (all.size() > max_listed_conflicts) {
    msg += fmt::format("; and {} more", all.size() - max_listed_conflicts);
  }
  if (plan.existing_files() > 0) {
    msg += fmt::format(
        ". {} file(s) already exist and file_exists_behavior is DISALLOW: set "
        "file_exists_behavior to OVERWRITE (replace them) or RETAIN (keep them) in the appspec "
        "or for this deployment, or remove them from the host",
        plan.existing_files());
  }
  return msg;
}

// Carries out the plan. On failure removes what it had created and returns
// the error.
result<install_manifest> execute(const std::vector<step>& steps, const fs::path& install_root,
                                 const fs::path& root_canonical, const install_log& log) {
  install_manifest done;
  done.reserve(steps.size());
  std::vector<const step*> made_dirs;
  std::size_t files = 0, links = 0, replaced = 0;
  std::string last_checked_parent;

  auto run = [&](const step& s) -> result<bool> {  // true: recorded
    const fs::path real = real_path(install_root, s.host);
    const fs::path parent = real.parent_path();
    if (parent.native() != last_checked_parent) {
      MESH_CHECK(check_inside_root(root_canonical, parent));
      last_checked_parent = parent.native();
    }
    switch (s.kind) {
      case step_kind::make_dir:
        // 0700 while filling it, so a read-only revision directory can still
        // be written into; the final mode is applied at the end.
        if (::mkdir(real.c_str(), 0700) != 0) {
          int e = errno;
          struct stat st;
          if (e == EEXIST && ::stat(real.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return false;
          return io_failure("cannot create directory", real, e);
        }
        made_dirs.push_back(&s);
        return true;
      case step_kind::copy_file:
        MESH_CHECK(copy_file_atomic(s.source, real, s.mode, s.replace));
        ++files;
        break;
      case step_kind::copy_symlink:
        MESH_CHECK(copy_symlink_atomic(s.source, real, s.replace));
        ++links;
        break;
    }
    if (s.replace) {
      ++replaced;
      emit(log, fmt::format("replaced the existing {} (file_exists_behavior OVERWRITE)", s.host));
    }
    return true;
  };

  auto fail = [&](const error& err, const std::string& host) -> error {
    std::string msg = fmt::format("install failed at {}: {}", host, err.message);
    if (done.empty()) return error{err.code, msg + "; nothing had been installed yet"};
    auto undone = remove_installed(done, install_root, log);
    if (undone) {
      msg += fmt::format("; removed the {} entries this install had created", done.size());
    } else {
      msg += fmt::format("; removing the {} entries this install had created failed too: {}",
                         done.size(), undone.error().message);
    }
    return error{err.code, msg};
  };

  for (const step& s : steps) {
    auto r = run(s);
    if (!r) return fail(r.error(), s.host);
    if (r.value()) done.push_back(installed_entry{s.host, s.kind == step_kind::make_dir});
  }
  // Final directory modes, deepest first (a parent losing its write bit must
  // not stop the children being set; root would not care, others would).
  for (auto it = made_dirs.rbegin(); it != made_dirs.rend(); ++it) {
    const fs::path real = real_path(install_root, (*it)->host);
    if (::chmod(real.c_str(), (*it)->mode) != 0) {
      return fail(io_failure("cannot chmod", real, errno), (*it)->host);
    }
  }
  emit(log, fmt::format("installed {} file(s) and {} symlink(s) ({} replaced), created {} "
                        "director{} under {}",
                        files, links, replaced, made_dirs.size(),
                        made_dirs.size() == 1 ? "y" : "ies", install_root.string()));
  return done;
}

result<fs::path> canonical_dir(const fs::path& dir, std::string_view what) {
  std::error_code ec;
  fs::path canon = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(canon, ec)) {
    return make_error(errc::invalid_argument,
                      fmt::format("{} {} is not an existing directory", what, dir.string()));
  }
  return canon;
}

}  // namespace

result<std::string> normalize_host_path(std::string_view path) {
  if (path.empty() || path.front() != '/') {
    return make_error(errc::invalid_argument, fmt::format("\"{}\" is not an absolute path", path));
  }
  auto parts = components(path);
  if (!parts) {
    return make_error(errc::invalid_argument,
                      fmt::format("\"{}\" contains a \"..\" component", path));
  }
  if (parts->empty()) return std::string("/");
  std::string out;
  for (std::string_view p : *parts) {
    out += '/';
    out += p;
  }
  return out;
}

fs::path real_path(const fs::path& install_root, std::string_view host) {
  while (!host.empty() && host.front() == '/') host.remove_prefix(1);
  if (host.empty()) return install_root;
  return install_root / fs::path(host);
}

result<void> check_inside_root(const fs::path& canonical_root, const fs::path& dir) {
  if (canonical_root == "/") return ok();
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(dir.c_str(), nullptr),
                                                       &std::free);
  if (!resolved) return io_failure("cannot resolve", dir, errno);
  std::string_view r(resolved.get());
  const std::string& root = canonical_root.native();
  if (r == root || (r.size() > root.size() && r.starts_with(root) && r[root.size()] == '/')) {
    return ok();
  }
  return make_error(
      errc::invalid_argument,
      fmt::format("{} leads to {}, outside the install root {}", dir.string(), r, root));
}

result<void> remove_installed(const install_manifest& previous, const fs::path& install_root,
                              const install_log& log) {
  MESH_TRY(fs::path root_canonical, canonical_dir(install_root, "install root"));
  std::vector<std::string> failures;
  std::size_t removed = 0, kept = 0;

  for (auto it = previous.rbegin(); it != previous.rend(); ++it) {
    auto host_r = normalize_host_path(it->path);
    if (!host_r) {
      failures.push_back(fmt::format("{}: {}", it->path, host_r.error().message));
      continue;
    }
    const std::string& host = host_r.value();
    if (host == "/") continue;  // never the install root itself
    const fs::path real = real_path(install_root, host);
    struct stat st;
    if (::lstat(real.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;  // already gone
      failures.push_back(fmt::format("{}: {}", host, sys_error(errno)));
      continue;
    }
    if (auto inside = check_inside_root(root_canonical, real.parent_path()); !inside) {
      failures.push_back(fmt::format("{}: {}", host, inside.error().message));
      continue;
    }
    const bool is_dir = S_ISDIR(st.st_mode);
    if (it->directory != is_dir) {
      ++kept;
      emit(log, fmt::format("left {} in place: it is now a {} but was installed as a {}", host,
                            is_dir ? "directory" : "file", it->directory ? "directory" : "file"));
      continue;
    }
    if (is_dir) {
      if (::rmdir(real.c_str()) == 0) {
        ++removed;
      } else if (errno == ENOTEMPTY || errno == EEXIST) {
        ++kept;
        emit(log, fmt::format("kept the directory {}: it is not empty", host));
      } else if (errno != ENOENT) {
        failures.push_back(fmt::format("{}: {}", host, sys_error(errno)));
      }
    } else if (::unlink(real.c_str()) == 0) {
      ++removed;
    } else if (errno != ENOENT) {
      failures.push_back(fmt::format("{}: {}", host, sys_error(errno)));
    }
  }

  emit(log, fmt::format("removed {} of the {} entries the previous deployment installed ({} kept, "
                        "{} failed)",
                        removed, previous.size(), kept, failures.size()));
  if (failures.empty()) return ok();
  std::string msg =
      fmt::format("could not remove {} of the entries the previous deployment installed under {}: ",
                  failures.size(), install_root.string());
  for (std::size_t i = 0; i < failures.size(); ++i) {
    if (i > 0) msg += "; ";
    msg += failures[i];
  }
  return make_error(errc::io_error, std::move(msg));
}

result<install_manifest> install_files(const appspec& spec, const fs::path& revision_root,
                                       const fs::path& install_root, file_exists_behavior behavior,
                                       const install_log& log) {
  MESH_TRY(fs::path revision_canonical, canonical_dir(revision_root, "revision root"));
  MESH_TRY(fs::path root_canonical, canonical_dir(install_root, "install root"));

  planner plan(revision_root, revision_canonical, install_root, root_canonical, behavior, log);
  const std::string file = spec.file_name.empty() ? "appspec.yml" : spec.file_name;
  for (std::size_t i = 0; i < spec.files.size(); ++i) {
    const file_mapping& m = spec.files[i];
    MESH_CHECK(plan.add_mapping(m, fmt::format("{}:{}: files[{}]", file, m.line, i)));
  }
  if (!plan.conflicts().empty()) {
    return make_error(errc::install_conflict, conflict_message(plan, install_root));
  }
  return execute(plan.steps(), install_root, root_canonical, log);
}

}  // namespace meshdeploy::agent

#include "node/agent/hook_runner.h"

#include "node/agent/unique_fd.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <exception>
#include <fcntl.h>
#include <grp.h>
#include <optional>
#include <poll.h>
#include <pwd.h>
#include <set>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

namespace meshdeploy::agent {
namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view token_variable = "MESHDEPLOY_HOOK_TOKEN";
constexpr std::string_view base_path =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// After the script exits, how long we keep collecting what is already
// buffered in the pipe (background processes may hold it open forever).
constexpr milliseconds drain_limit{100};
// Poll period where no readiness fd exists (no pidfd; waiting for a process
// group to empty during the kill grace).
constexpr milliseconds poll_slice{20};
constexpr std::size_t read_chunk = 64 * 1024;

std::string signal_name(int sig) {
  const char* a = ::sigabbrev_np(sig);
  return a != nullptr ? fmt::format("SIG{}", a) : fmt::format("signal {}", sig);
}

std::string utc_now() {
  const auto ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
}

std::string format_duration(milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{} seconds", d.count() / 1000);
  return fmt::format("{} ms", d.count());
}

int ceil_ms(steady::duration d) {
  if (d <= steady::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<milliseconds>(d).count();
  return static_cast<int>(std::min<long long>(ms, 1 << 30));
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // always O_CLOEXEC
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

int pidfd_kill(int pidfd, int sig) {
#ifdef SYS_pidfd_send_signal
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
#else
  (void)pidfd;
  (void)sig;
  errno = ENOSYS;
  return -1;
#endif
}

// Signals the process group `pgid`. Before the child's setsid() the group does
// not exist yet (ESRCH); the child itself is then signalled, which is safe
// because it starts with every signal blocked and default dispositions.
void signal_group(pid_t pgid, int sig) {
  if (::kill(-pgid, sig) != 0 && errno == ESRCH) ::kill(pgid, sig);
}

// ----------------------------------------------------------------------------
// Users

struct user_info {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (initgroups list), incl. gid
  std::string name;
  std::string home;
};

std::size_t pw_buffer_size() {
  const long n = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  return n > 0 ? static_cast<std::size_t>(n) : 16384;
}

// Looks the user up by name (by_name) or by uid. nullopt: no such user. A
// lookup error other than "not found" is returned as a message.
struct user_lookup {
  std::optional<user_info> user;
  std::string error;
};

user_lookup lookup_user(const std::string* name, uid_t uid) {
  std::vector<char> buf(pw_buffer_size());
  for (int attempt = 0; attempt < 8; ++attempt) {
    passwd pw{};
    passwd* found = nullptr;
    const int rc = name != nullptr
                       ? ::getpwnam_r(name->c_str(), &pw, buf.data(), buf.size(), &found)
                       : ::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0) return {std::nullopt, errno_text(rc)};
    if (found == nullptr) return {};
    user_info u;
    u.uid = pw.pw_uid;
    u.gid = pw.pw_gid;
    u.name = pw.pw_name;
    u.home = pw.pw_dir != nullptr && *pw.pw_dir != '\0' ? pw.pw_dir : "/";
    return {std::move(u), {}};
  }
  return {std::nullopt, "user database entry too large"};
}

// The supplementary groups initgroups(3) would set, computed before fork
// because NSS lookups are not async-signal-safe.
std::optional<std::vector<gid_t>> group_list(const user_info& u) {
  int n = 32;
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::vector<gid_t> groups(static_cast<std::size_t>(n));
    int count = n;
    if (::getgrouplist(u.name.c_str(), u.gid, groups.data(), &count) >= 0) {
      groups.resize(static_cast<std::size_t>(count));
      return groups;
    }
    n = std::max(count, n * 2);
  }
  return std::nullopt;
}

bool may_execute(const struct stat& st, const user_info& u) {
  if (u.uid == 0) return (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0;
  if (st.st_uid == u.uid) return (st.st_mode & S_IXUSR) != 0;
  if (std::find(u.groups.begin(), u.groups.end(), st.st_gid) != u.groups.end()) {
    return (st.st_mode & S_IXGRP) != 0;
  }
  return (st.st_mode & S_IXOTH) != 0;
}

// ----------------------------------------------------------------------------
// Output: the log file and the tail ring.

class output_sink {
 public:
  output_sink(unique_fd log, fs::path path) : log_(std::move(log)), path_(std::move(path)) {}

  // "[time] text" on a line of its own.
  void line(std::string_view text) {
    std::string s;
    if (!at_line_start_) s.push_back('\n');
    s += fmt::format("[{}] {}\n", utc_now(), text);
    write_log(s);
    at_line_start_ = true;
  }

  // Script output: to the log and the tail.
  void output(std::string_view data) {
    if (data.empty()) return;
    tail_.append(data);
    if (tail_.size() > 2 * hook_log_tail_bytes) tail_.erase(0, tail_.size() - hook_log_tail_bytes);
    write_log(data);
    at_line_start_ = data.back() == '\n';
  }

  // Ends the output with a newline in the log (not in the tail) so whatever
  // is logged next starts on its own line.
  void end_output() {
    if (!at_line_start_) write_log("\n");
    at_line_start_ = true;
  }

  // The last hook_log_tail_bytes bytes, starting on a UTF-8 boundary.
  [[nodiscard]] std::string tail() const {
    std::string_view t = tail_;
    if (t.size() > hook_log_tail_bytes) t.remove_prefix(t.size() - hook_log_tail_bytes);
    for (int i = 0; i < 3 && !t.empty() && (static_cast<unsigned char>(t.front()) & 0xC0) == 0x80;
         ++i) {
      t.remove_prefix(1);
    }
    return std::string(t);
  }

  [[nodiscard]] const std::string& log_error() const { return log_error_; }

 private:
  void write_log(std::string_view s) {
    if (!log_ || !log_error_.empty()) return;
    while (!s.empty()) {
      const ssize_t n = ::write(log_.get(), s.data(), s.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        log_error_ = fmt::format("writing the script log {} failed: {}", path_.string(),
                                 errno_text(n < 0 ? errno : EIO));
        spdlog::warn("{}", log_error_);
        return;
      }
      s.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  unique_fd log_;
  fs::path path_;
  std::string tail_;
  std::string log_error_;
  bool at_line_start_ = true;
};

// ----------------------------------------------------------------------------
// The child side. Everything it touches is prepared before fork; between fork
// and exec only async-signal-safe calls are made (no allocation, no locks).

enum class child_step : int { setsid, stdio, setgroups, setgid, setuid, chdir, exec };

struct child_failure {
  child_step step;
  int err;
};

struct child_plan {
  const char* script = nullptr;
  char* const* argv = nullptr;
  char* const* sh_argv = nullptr;  // /bin/sh <script>, for files without #!
  char* const* envp = nullptr;
  const char* cwd = nullptr;
  int devnull = -1;
  int out = -1;     // write end of the output pipe
  int report = -1;  // write end of the CLOEXEC failure-report pipe
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  std::size_t group_count = 0;
  int max_fd = 1024;  // for closing descriptors when close_range is missing
};

[[noreturn]] void child_fail(int report, child_step step, int err) {
  const child_failure f{step, err};
  ssize_t ignored = ::write(report, &f, sizeof f);
  (void)ignored;
  ::_exit(127);
}

[[noreturn]] void child_main(const child_plan& p) {
  // Default dispositions for everything (the node ignores SIGPIPE, has
  // handlers), then an empty mask: a SIGTERM that arrived since fork is
  // delivered now and ends us with its default action.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigemptyset(&dfl.sa_mask);
  for (int s = 1; s < NSIG; ++s) {
    if (s != SIGKILL && s != SIGSTOP) ::sigaction(s, &dfl, nullptr);
  }
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  if (::setsid() < 0) child_fail(p.report, child_step::setsid, errno);

  // Move our descriptors above 2 first so dup2 onto 0..2 cannot clobber them.
  const int report = ::fcntl(p.report, F_DUPFD_CLOEXEC, 10);
  if (report < 0) child_fail(p.report, child_step::stdio, errno);
  const int nul = ::fcntl(p.devnull, F_DUPFD_CLOEXEC, 10);
  const int out = ::fcntl(p.out, F_DUPFD_CLOEXEC, 10);
  if (nul < 0 || out < 0) child_fail(report, child_step::stdio, errno);
  if (::dup2(nul, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) {
    child_fail(report, child_step::stdio, errno);
  }

  // Close everything else except the report pipe (CLOEXEC, closes at exec).
  bool closed = false;
#ifdef SYS_close_range
  closed =
      (report <= 3 || ::syscall(SYS_close_range, 3U, static_cast<unsigned>(report - 1), 0U) == 0) &&
      ::syscall(SYS_close_range, static_cast<unsigned>(report + 1), ~0U, 0U) == 0;
#endif
  if (!closed) {
    for (int fd = 3; fd < p.max_fd; ++fd) {
      if (fd != report) ::close(fd);
    }
  }

  if (p.switch_user) {
    // Raw syscalls: they change only this (single) thread, with no libc
    // cross-thread machinery involved after fork.
    if (::syscall(SYS_setgroups, p.group_count, p.groups) != 0) {
      child_fail(report, child_step::setgroups, errno);
    }
    if (::syscall(SYS_setresgid, p.gid, p.gid, p.gid) != 0) {
      child_fail(report, child_step::setgid, errno);
    }
    if (::syscall(SYS_setresuid, p.uid, p.uid, p.uid) != 0) {
      child_fail(report, child_step::setuid, errno);
    }
  }
  // After dropping privileges: the user must be able to enter it.
  if (::chdir(p.cwd) != 0) child_fail(report, child_step::chdir, errno);

  ::execve(p.script, p.argv, p.envp);
  if (errno == ENOEXEC) ::execve("/bin/sh", p.sh_argv, p.envp);  // like execvp and shells
  child_fail(report, child_step::exec, errno);
}

std::string_view step_name(child_step s) {
  switch (s) {
    case child_step::setsid:
      return "setsid";
    case child_step::stdio:
      return "redirecting stdin/stdout/stderr";
    case child_step::setgroups:
      return "setgroups";
    case child_step::setgid:
      return "setgid";
    case child_step::setuid:
      return "setuid";
    case child_step::chdir:
      return "chdir";
    case child_step::exec:
      return "execve";
  }
  return "start";
}

// ----------------------------------------------------------------------------
// The parent side.

struct exit_info {
  bool known = false;  // false: the status was lost (someone else reaped the child)
  bool signaled = false;
  int value = 0;  // exit code or signal number
};

// Has the child exited? Does not reap it: while it is a zombie its pid, and
// so its process group id, cannot be reused, which keeps kill(-pgid) safe.
std::optional<exit_info> peek_exit(pid_t pid) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
      if (info.si_pid != pid) return std::nullopt;
      if (info.si_code == CLD_EXITED) return exit_info{true, false, info.si_status};
      return exit_info{true, true, info.si_status};
    }
    if (errno == EINTR) continue;
    return exit_info{};  // ECHILD: reaped elsewhere
  }
  return std::nullopt;
}

void reap(pid_t pid) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (::waitpid(pid, nullptr, 0) >= 0 || errno != EINTR) return;
  }
}

// Kills and reaps the child on any early exit from run (exception, callback
// failure), so no unreaped or unsupervised child is ever left behind.
class child_guard {
 public:
  explicit child_guard(pid_t pid) : pid_(pid) {}
  ~child_guard() {
    if (pid_ <= 0) return;
    signal_group(pid_, SIGKILL);
    reap(pid_);
  }
  child_guard(const child_guard&) = delete;
  child_guard& operator=(const child_guard&) = delete;
  void release() { pid_ = -1; }

 private:
  pid_t pid_;
};

constexpr unsigned long pf_kthread = 0x00200000;  // include/linux/sched.h

struct proc_stat {
  char state = 0;
  long pgrp = 0;
  unsigned long flags = 0;
};

// Parses /proc/<pid>/stat; nullopt if the process is gone.
std::optional<proc_stat> read_proc_stat(long pid) {
  unique_fd fd(::open(fmt::format("/proc/{}/stat", pid).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::array<char, 1024> buf{};
  const ssize_t n = ::read(fd.get(), buf.data(), buf.size() - 1);  // stays NUL-terminated
  if (n <= 0) return std::nullopt;
  // "pid (comm) S ppid pgrp session tty tpgid flags ..."; comm may contain
  // spaces and ')', so parse from the last ')'.
  const char* close = std::strrchr(buf.data(), ')');
  if (close == nullptr || close[1] == '\0') return std::nullopt;
  proc_stat st;
  long ppid = 0;
  if (std::sscanf(close + 2, "%c %ld %ld %*d %*d %*d %lu", &st.state, &ppid, &st.pgrp, &st.flags) !=
      4) {
    return std::nullopt;
  }
  return st;
}

// Whether any live (non-zombie) process other than `leader` is in group
// `pgid`, by scanning /proc.
bool group_has_live_members(pid_t pgid, pid_t leader) {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return false;
  bool found = false;
  while (!found) {
    const dirent* e = ::readdir(d);
    if (e == nullptr) break;
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == leader) continue;
    const auto st = read_proc_stat(pid);
    if (st && st->pgrp == pgid && st->state != 'Z' && st->state != 'X') found = true;
  }
  ::closedir(d);
  return found;
}

struct prepared {
  fs::path script;
  fs::path cwd;
  std::string display;  // the script's name in messages
  user_info user;
  bool switch_user = false;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  std::string sh;
  std::vector<char*> argv;
  std::vector<char*> sh_argv;
};

class hook_run {
 public:
  hook_run(const hook_request& r, const std::function<void(int)>& on_started)
      : r_(r), on_started_(on_started) {}

  hook_outcome run() {
    p_.display = !r_.script_name.empty() ? r_.script_name : r_.script.string();
    if (r_.timeout <= milliseconds::zero()) {
      return fail(script_error_code::unknown_error,
                  fmt::format("Script at specified location: {} has an invalid timeout of {} ms",
                              p_.display, r_.timeout.count()));
    }
    for (const auto& [name, value] : r_.env) {
      if (name.empty() || name.find_first_of(std::string_view("=\0", 2)) != std::string::npos ||
          value.find('\0') != std::string::npos) {
        return fail(script_error_code::unknown_error,
                    fmt::format("Script at specified location: {}: invalid environment variable "
                                "name or value '{}'",
                                p_.display, name));
      }
    }
    if (!r_.log_file.empty()) {
      std::error_code ec;
      if (r_.log_file.has_parent_path()) fs::create_directories(r_.log_file.parent_path(), ec);
      unique_fd log(
          ::open(r_.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644));
      if (!log) {
        return fail(
            script_error_code::unknown_error,
            fmt::format("Script at specified location: {}: cannot open the script log {}: {}",
                        p_.display, r_.log_file.string(), errno_text(errno)));
      }
      sink_.emplace(std::move(log), r_.log_file);
    } else {
      sink_.emplace(unique_fd{}, fs::path{});
    }
    sink_->line(fmt::format("Script - {}", p_.display));

    if (auto o = prepare()) return std::move(*o);
    return start_and_wait();
  }

 private:
  // Checks and builds everything the child needs. Returns an outcome when the
  // script must not be started.
  std::optional<hook_outcome> prepare() {
    p_.script =
        r_.script.is_absolute() || r_.working_dir.empty() ? r_.script : r_.working_dir / r_.script;
    p_.cwd = !r_.working_dir.empty() ? r_.working_dir : p_.script.parent_path();
    if (p_.cwd.empty()) p_.cwd = "/";

    struct stat st {};
    if (::stat(p_.script.c_str(), &st) != 0) {
      const int e = errno;
      if (e == ENOENT || e == ENOTDIR) {
        return fail(
            script_error_code::script_missing,
            fmt::format("Script does not exist at specified location: {}", p_.script.string()));
      }
      return fail(script_error_code::unknown_error,
                  fmt::format("Script at specified location: {}: cannot stat {}: {}", p_.display,
                              p_.script.string(), errno_text(e)));
    }

    if (!r_.runas.empty()) {
      auto found = lookup_user(&r_.runas, 0);
      if (!found.user) {
        return fail(
            script_error_code::unknown_error,
            fmt::format("Script at specified location: {} cannot run as user '{}': {}", p_.display,
                        r_.runas, found.error.empty() ? "no such user" : found.error));
      }
      p_.user = std::move(*found.user);
      auto groups = group_list(p_.user);
      if (!groups) {
        return fail(script_error_code::unknown_error,
                    fmt::format("Script at specified location: {} cannot run as user '{}': "
                                "cannot list the user's groups",
                                p_.display, r_.runas));
      }
      p_.user.groups = std::move(*groups);
      p_.switch_user = true;
    } else {
      const uid_t uid = ::geteuid();
      auto found = lookup_user(nullptr, uid);
      if (found.user) {
        p_.user = std::move(*found.user);
      } else {
        p_.user.uid = uid;
        p_.user.name = std::to_string(uid);
        p_.user.home = "/";
      }
      p_.user.gid = ::getegid();
      const int n = ::getgroups(0, nullptr);
      if (n > 0) {
        p_.user.groups.resize(static_cast<std::size_t>(n));
        const int got = ::getgroups(n, p_.user.groups.data());
        p_.user.groups.resize(static_cast<std::size_t>(std::max(got, 0)));
      }
      p_.user.groups.push_back(p_.user.gid);
    }

    if (S_ISDIR(st.st_mode)) {
      return fail(
          script_error_code::script_not_executable,
          fmt::format("Script at specified location: {} is a directory, not a script", p_.display));
    }
    if (!S_ISREG(st.st_mode)) {
      return fail(
          script_error_code::script_not_executable,
          fmt::format("Script at specified location: {} is not a regular file", p_.display));
    }
    if (!may_execute(st, p_.user)) {
      return fail(script_error_code::script_not_executable,
                  fmt::format("Script at specified location: {} is not executable by user {} "
                              "(mode {:04o}, owner {}:{}); set its execute bit in the revision",
                              p_.display, p_.user.name, st.st_mode & 07777, st.st_uid, st.st_gid));
    }

    struct stat cwd_st {};
    if (::stat(p_.cwd.c_str(), &cwd_st) != 0 || !S_ISDIR(cwd_st.st_mode)) {
      return fail(script_error_code::unknown_error,
                  fmt::format("Script at specified location: {}: working directory {} is not a "
                              "directory",
                              p_.display, p_.cwd.string()));
    }

    build_env();
    p_.sh = "/bin/sh";
    p_.argv = {const_cast<char*>(p_.script.c_str()), nullptr};
    p_.sh_argv = {p_.sh.data(), const_cast<char*>(p_.script.c_str()), nullptr};
    return std::nullopt;
  }

  void build_env() {
    std::vector<std::pair<std::string, std::string>> vars = {
        {"PATH", std::string(base_path)}, {"HOME", p_.user.home}, {"USER", p_.user.name},
        {"LOGNAME", p_.user.name},        {"SHELL", "/bin/sh"},   {"LANG", "C.UTF-8"},
    };
    auto set = [&](const std::string& name, const std::string& value) {
      auto it =
          std::find_if(vars.begin(), vars.end(), [&](const auto& v) { return v.first == name; });
      if (it != vars.end()) {
        it->second = value;
      } else {
        vars.emplace_back(name, value);
      }
    };
    for (const auto& [name, value] : r_.env) set(name, value);
    if (!r_.token.empty()) set(std::string(token_variable), r_.token);
    p_.env_storage.clear();
    for (const auto& [name, value] : vars) p_.env_storage.push_back(name + "=" + value);
    for (auto& s : p_.env_storage) p_.envp.push_back(s.data());
    p_.envp.push_back(nullptr);
  }

  hook_outcome start_and_wait() {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return start_failed("pipe", errno);
    unique_fd out_r(pipe_fds[0]);
    unique_fd out_w(pipe_fds[1]);
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return start_failed("pipe", errno);
    unique_fd report_r(pipe_fds[0]);
    unique_fd report_w(pipe_fds[1]);
    unique_fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!devnull) return start_failed("open /dev/null", errno);
    // Only our end is non-blocking; the script's stdout stays blocking.
    if (::fcntl(out_r.get(), F_SETFL, O_NONBLOCK) != 0 ||
        ::fcntl(report_r.get(), F_SETFL, O_NONBLOCK) != 0) {
      return start_failed("fcntl", errno);
    }

    child_plan plan;
    plan.script = p_.script.c_str();
    plan.argv = p_.argv.data();
    plan.sh_argv = p_.sh_argv.data();
    plan.envp = p_.envp.data();
    plan.cwd = p_.cwd.c_str();
    plan.devnull = devnull.get();
    plan.out = out_w.get();
    plan.report = report_w.get();
    plan.switch_user = p_.switch_user;
    plan.uid = p_.user.uid;
    plan.gid = p_.user.gid;
    plan.groups = p_.user.groups.data();
    plan.group_count = p_.user.groups.size();
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
      plan.max_fd = static_cast<int>(std::min<rlim_t>(lim.rlim_cur, 1 << 20));
    }

    // Block every signal around fork (as posix_spawn does) so the child never
    // runs one of the node's handlers before it resets them.
    sigset_t all;
    sigset_t old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    const auto start = steady::now();
    const pid_t pid = ::fork();
    if (pid == 0) child_main(plan);
    const int fork_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) return start_failed("fork", fork_errno);

    child_guard guard(pid);
    out_w.reset();
    report_w.reset();
    devnull.reset();
    outcome_.pid = pid;
    unique_fd pidfd(open_pidfd(pid));

    if (on_started_) {
      try {
        on_started_(pid);
      } catch (const std::exception& e) {
        return fail(script_error_code::unknown_error,
                    fmt::format("Script at specified location: {} was killed: the start "
                                "callback failed: {}",
                                p_.display, e.what()));
      } catch (...) {
        return fail(script_error_code::unknown_error,
                    fmt::format("Script at specified location: {} was killed: the start "
                                "callback failed",
                                p_.display));
      }
    }

    const auto deadline = start + r_.timeout;
    const milliseconds grace = std::max(r_.kill_grace, milliseconds::zero());
    steady::time_point kill_at{};
    bool term_sent = false;
    bool kill_sent = false;
    std::optional<exit_info> exited;
    // Ends when the script exits: every wait is bounded by the next deadline,
    // and after SIGKILL the kernel guarantees the exit.
    for (;;) {
      exited = peek_exit(pid);
      if (exited) break;
      const auto now = steady::now();
      if (!term_sent && now >= deadline) {
        signal_group(pid, SIGTERM);
        term_sent = true;
        kill_at = now + grace;
      }
      if (term_sent && !kill_sent && now >= kill_at) {
        signal_group(pid, SIGKILL);
        kill_sent = true;
      }
      int wait_ms = kill_sent ? -1 : ceil_ms((term_sent ? kill_at : deadline) - now);
      if (!pidfd) {
        const int slice = static_cast<int>(poll_slice.count());
        wait_ms = wait_ms < 0 ? slice : std::min(wait_ms, slice);
      }
      wait_readable(out_r, pidfd, wait_ms);
    }

    if (term_sent && !kill_sent) {
      // The script is gone; give the rest of its group what is left of the
      // grace period, then SIGKILL whatever still runs.
      while (steady::now() < kill_at && group_has_live_members(pid, pid)) {
        wait_readable(
            out_r, unique_fd{},
            std::min(ceil_ms(kill_at - steady::now()), static_cast<int>(poll_slice.count())));
      }
      if (group_has_live_members(pid, pid)) {
        signal_group(pid, SIGKILL);
        kill_sent = true;
      }
    }
    int token_kills = 0;
    if (term_sent && !r_.token.empty()) token_kills = kill_processes_with_token(r_.token);

    drain(out_r);
    out_r.reset();
    sink_->end_output();
    std::optional<child_failure> start_failure = read_failure(report_r);
    reap(pid);
    guard.release();
    outcome_.duration = std::chrono::duration_cast<milliseconds>(steady::now() - start);

    if (term_sent) {
      std::string msg = fmt::format("Script at specified location: {} failed to complete in {}",
                                    p_.display, format_duration(r_.timeout));
      msg += kill_sent ? fmt::format("; its process group got SIGTERM, then SIGKILL {} later",
                                     format_duration(grace))
                       : std::string("; its process group got SIGTERM");
      if (token_kills > 0) {
        msg += fmt::format("; {} process(es) that had left the group were killed", token_kills);
      }
      if (exited->known)
        outcome_.exit_status = exited->signaled ? 128 + exited->value : exited->value;
      return fail(script_error_code::script_timed_out, std::move(msg));
    }
    if (start_failure) return exec_failed(*start_failure);
    if (!exited->known) {
      return fail(script_error_code::unknown_error,
                  fmt::format("Script at specified location: {}: its exit status was lost (the "
                              "process was reaped elsewhere)",
                              p_.display));
    }
    if (exited->signaled) {
      outcome_.exit_status = 128 + exited->value;
      return fail(script_error_code::script_failed,
                  fmt::format("Script at specified location: {} was killed by {}", p_.display,
                              signal_name(exited->value)));
    }
    outcome_.exit_status = exited->value;
    if (exited->value != 0) {
      return fail(script_error_code::script_failed,
                  fmt::format("Script at specified location: {} failed with exit code {}",
                              p_.display, exited->value));
    }
    outcome_.code = script_error_code::success;
    outcome_.log_tail = sink_->tail();
    return std::move(outcome_);
  }

  // Waits until the output pipe or the pidfd is readable (or wait_ms passes),
  // then reads one chunk of output if there is one.
  void wait_readable(unique_fd& out, const unique_fd& pidfd, int wait_ms) {
    std::array<pollfd, 2> fds{};
    nfds_t n = 0;
    if (out) fds[n++] = pollfd{out.get(), POLLIN, 0};
    if (pidfd) fds[n++] = pollfd{pidfd.get(), POLLIN, 0};
    const int rc = ::poll(fds.data(), n, wait_ms);
    if (rc <= 0 || !out || fds[0].revents == 0) return;
    if (!read_once(out.get())) out.reset();  // EOF: every writer is gone
  }

  // Reads one chunk. False at EOF or on a read error.
  bool read_once(int fd) {
    std::array<char, read_chunk> buf;
    for (int attempt = 0; attempt < 100; ++attempt) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n > 0) {
        sink_->output(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        return true;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      return errno == EAGAIN;
    }
    return true;
  }

  // What the script wrote before it exited is already in the pipe; take it,
  // but for a bounded time only (a background process may write forever).
  void drain(unique_fd& out) {
    const auto until = steady::now() + drain_limit;
    std::array<char, read_chunk> buf;
    while (out && steady::now() < until) {
      const ssize_t n = ::read(out.get(), buf.data(), buf.size());
      if (n > 0) {
        sink_->output(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;  // EOF, or nothing buffered (EAGAIN)
    }
  }

  static std::optional<child_failure> read_failure(const unique_fd& report) {
    child_failure f{};
    const ssize_t n = ::read(report.get(), &f, sizeof f);
    if (n == static_cast<ssize_t>(sizeof f)) return f;
    return std::nullopt;
  }

  hook_outcome exec_failed(const child_failure& f) {
    outcome_.exit_status = 127;
    std::string what;
    if (f.step == child_step::chdir) {
      what = fmt::format("chdir to {} as user {}: {}", p_.cwd.string(), p_.user.name,
                         errno_text(f.err));
    } else {
      what = fmt::format("{}: {}", step_name(f.step), errno_text(f.err));
    }
    if (f.step == child_step::exec && f.err == ENOENT) {
      what += " (is the interpreter named on its #! line installed?)";
    } else if (f.step == child_step::exec && f.err == EACCES) {
      what += fmt::format(
          " (user {} needs execute permission on the script, its #! interpreter, and search "
          "permission on every directory above them)",
          p_.user.name);
    }
    return fail(
        script_error_code::script_failed,
        fmt::format("Script at specified location: {} could not be started: {}", p_.display, what));
  }

  hook_outcome start_failed(std::string_view what, int err) {
    return fail(script_error_code::unknown_error,
                fmt::format("Script at specified location: {} could not be started: {}: {}",
                            p_.display, what, errno_text(err)));
  }

  hook_outcome fail(script_error_code code, std::string message) {
    outcome_.code = code;
    outcome_.message = std::move(message);
    if (sink_) {
      outcome_.log_tail = sink_->tail();
      sink_->line(fmt::format("Script - {} {}: {}", p_.display, to_string(code), outcome_.message));
      if (!sink_->log_error().empty()) outcome_.message += " (" + sink_->log_error() + ")";
    }
    return std::move(outcome_);
  }

  const hook_request& r_;
  const std::function<void(int)>& on_started_;
  prepared p_;
  std::optional<output_sink> sink_;
  hook_outcome outcome_;
};

enum class env_match { yes, no, unknown };

// Whether /proc/<pid>/environ holds exactly the entry `needle`. `unknown`
// when a user process shows an empty environment: it is in the middle of an
// execve (the new image's environment is not set up yet), so look again.
env_match environ_match(long pid, std::string_view needle) {
  unique_fd fd(::open(fmt::format("/proc/{}/environ", pid).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return env_match::no;
  std::string env;
  std::array<char, 16384> buf;
  constexpr std::size_t max_environ = 8u << 20;
  while (env.size() < max_environ) {
    const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    env.append(buf.data(), static_cast<std::size_t>(n));
  }
  if (env.empty()) {
    // Kernel threads and zombies have no environment, for good.
    const auto st = read_proc_stat(pid);
    if (!st || st->state == 'Z' || st->state == 'X' || (st->flags & pf_kthread) != 0) {
      return env_match::no;
    }
    return env_match::unknown;
  }
  for (std::size_t pos = 0; pos < env.size();) {
    std::size_t end = env.find('\0', pos);
    if (end == std::string::npos) end = env.size();
    if (std::string_view(env).substr(pos, end - pos) == needle) return env_match::yes;
    pos = end + 1;
  }
  return env_match::no;
}

}  // namespace

std::string_view to_string(script_error_code code) {
  switch (code) {
    case script_error_code::success:
      return "Success";
    case script_error_code::script_missing:
      return "ScriptMissing";
    case script_error_code::script_not_executable:
      return "ScriptNotExecutable";
    case script_error_code::script_timed_out:
      return "ScriptTimedOut";
    case script_error_code::script_failed:
      return "ScriptFailed";
    case script_error_code::unknown_error:
      return "UnknownError";
  }
  return "UnknownError";
}

hook_outcome run_hook(const hook_request& request, const std::function<void(int pid)>& on_started) {
  try {
    return hook_run(request, on_started).run();
  } catch (const std::exception& e) {
    hook_outcome o;
    o.code = script_error_code::unknown_error;
    o.message = fmt::format("Script at specified location: {}: internal error: {}",
                            request.script_name, e.what());
    return o;
  } catch (...) {
    hook_outcome o;
    o.code = script_error_code::unknown_error;
    o.message =
        fmt::format("Script at specified location: {}: internal error", request.script_name);
    return o;
  }
}

int kill_processes_with_token(std::string_view token) {
  if (token.empty() || token.find('\0') != std::string_view::npos) return 0;
  try {
    const std::string needle = fmt::format("{}={}", token_variable, token);
    const pid_t self = ::getpid();
    std::set<long> killed;
    std::vector<unique_fd> pidfds;  // to wait for the deaths
    // Looks at one process (pinned by its pidfd, when there is one, so the
    // signal cannot hit another process that reused the pid). False when its
    // environment could not be read yet.
    auto consider = [&](long pid, unique_fd& pidfd) {
      const env_match m = environ_match(pid, needle);
      if (m == env_match::unknown) return false;
      if (m == env_match::yes) {
        const int rc =
            pidfd ? pidfd_kill(pidfd.get(), SIGKILL) : ::kill(static_cast<pid_t>(pid), SIGKILL);
        if (rc == 0) {
          killed.insert(pid);
          if (pidfd) pidfds.push_back(std::move(pidfd));
        }
      }
      return true;
    };
    // A process may fork while we scan; rescan until a pass finds nothing new.
    for (int pass = 0; pass < 5; ++pass) {
      const std::size_t before = killed.size();
      std::vector<std::pair<long, unique_fd>> pending;  // caught inside execve
      DIR* d = ::opendir("/proc");
      if (d == nullptr) break;
      while (const dirent* e = ::readdir(d)) {
        char* end = nullptr;
        const long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end != '\0' || pid == self || killed.count(pid) != 0) continue;
        unique_fd pidfd(open_pidfd(static_cast<pid_t>(pid)));
        if (!pidfd && errno != ENOSYS) continue;  // gone
        if (!consider(pid, pidfd)) pending.emplace_back(pid, std::move(pidfd));
      }
      ::closedir(d);
      // An execve takes milliseconds; look again with backoff (~60 ms in all;
      // only processes that really have an empty environment pay it all).
      for (int round = 0; round < 6 && !pending.empty(); ++round) {
        ::poll(nullptr, 0, 1 << round);
        std::vector<std::pair<long, unique_fd>> still;
        for (auto& [pid, pidfd] : pending) {
          if (!consider(pid, pidfd)) still.emplace_back(pid, std::move(pidfd));
        }
        pending = std::move(still);
      }
      if (killed.size() == before) break;
    }
    // A pidfd turns readable when its process has exited.
    const auto until = steady::now() + std::chrono::seconds(2);
    while (!pidfds.empty() && steady::now() < until) {
      std::vector<pollfd> fds;
      for (const auto& fd : pidfds) fds.push_back(pollfd{fd.get(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), ceil_ms(until - steady::now())) <= 0) continue;
      std::vector<unique_fd> still;
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents == 0) still.push_back(std::move(pidfds[i]));
      }
      pidfds = std::move(still);
    }
    return static_cast<int>(killed.size());
  } catch (...) {
    return 0;
  }
}

}  // namespace meshdeploy::agent

#include "tests/support/process.h"

#include "tests/support/temp_dir.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace meshdeploy::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

int wait_status_to_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits for `pid` at most `timeout`; returns its exit code or -2 if still running.
int wait_for(int pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int i = 0; i < 100000; ++i) {
    int status = 0;
    const int r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return wait_status_to_code(status);
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(5ms);
  }
  return -2;
}

}  // namespace

std::string meshdeploy_binary() { return MESHDEPLOY_BINARY; }

fs::path source_path(const std::string& rel) { return fs::path(MESHDEPLOY_SOURCE_DIR) / rel; }

command_result run_command(const std::vector<std::string>& argv,
                           const std::vector<std::pair<std::string, std::string>>& env,
                           std::chrono::milliseconds timeout) {
  command_result res;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return res;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    const int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<pollfd, 2> fds{{{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}}};
  int open_fds = 2;
  bool timed_out = false;
  char buf[65536];
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? res.out : res.err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  if (timed_out) {
    ::kill(pid, SIGKILL);
    wait_for(pid, 10s);
    res.exit_code = -1;
    return res;
  }
  res.exit_code = wait_for(pid, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::max(deadline - std::chrono::steady_clock::now(),
                                             std::chrono::steady_clock::duration(1s))));
  return res;
}

bool ensure_cluster_keys(const fs::path& dir, std::string* why) {
  std::error_code ec;
  if (fs::exists(dir / "tester.grant", ec)) return true;
  const auto r = run_command(
      {meshdeploy_binary(), "cluster", "init", "--dir", dir.string(), "--operator", "tester"}, {},
      60s);
  if (r.exit_code != 0 && why != nullptr) {
    *why = "meshdeploy cluster init failed (" + std::to_string(r.exit_code) + "): " + r.err;
  }
  return r.exit_code == 0;
}

node_process::node_process(std::string name, fs::path data_dir, fs::path install_root,
                           std::vector<std::string> tags, std::vector<std::string> extra_args)
    : name_(std::move(name)),
      data_dir_(std::move(data_dir)),
      install_root_(std::move(install_root)),
      tags_(std::move(tags)),
      extra_args_(std::move(extra_args)) {
  start();
}

node_process::~node_process() {
  if (pid_ > 0) kill_hard();
}

bool node_process::start() {
  std::error_code ec;
  fs::create_directories(data_dir_, ec);
  fs::create_directories(install_root_, ec);
  fs::remove(data_dir_ / "api.addr", ec);
  std::vector<std::string> argv = {meshdeploy_binary(),
                                   "node",
                                   "run",
                                   "--name",
                                   name_,
                                   "--data-dir",
                                   data_dir_.string(),
                                   "--api",
                                   "127.0.0.1:0",
                                   "--install-root",
                                   install_root_.string()};
  for (const auto& t : tags_) {
    argv.push_back("--tag");
    argv.push_back(t);
  }
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  auto given = [&](const std::string& flag) {
    return std::find(extra_args_.begin(), extra_args_.end(), flag) != extra_args_.end();
  };
  const fs::path keys = cluster_dir();
  for (const auto& [flag, file] : {std::pair<std::string, std::string>{"--keyring", "keyring.txt"},
                                   {"--admin-pub", "admin.pub"},
                                   {"--grant", "tester.grant"}}) {
    if (given(flag)) continue;
    if (!ensure_cluster_keys(keys)) return false;
    argv.push_back(flag);
    argv.push_back((keys / file).string());
  }
  if (!given("--bind")) {
    argv.push_back("--bind");
    argv.push_back("127.0.0.1:0");
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const std::string log = log_path().string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  pid_ = pid;
  for (int i = 0; i < 400; ++i) {  // up to 20 s
    std::string addr;
    std::ifstream(data_dir_ / "api.addr") >> addr;
    if (!addr.empty()) {
      api_ = addr;
      return true;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

void node_process::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  wait_for(pid_, 20s);
  pid_ = -1;
}

int node_process::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int code = wait_for(pid_, 20s);
  if (code == -2) {
    ::kill(pid_, SIGKILL);
    code = wait_for(pid_, 10s);
  }
  pid_ = -1;
  return code;
}

command_result node_process::cli(std::vector<std::string> args,
                                 std::chrono::milliseconds timeout) const {
  return cli_as(cluster_dir() / "tester.key", std::move(args), timeout);
}

command_result node_process::cli_as(const fs::path& identity, std::vector<std::string> args,
                                    std::chrono::milliseconds timeout) const {
  args.insert(args.begin(), meshdeploy_binary());
  return run_command(
      args,
      {{"MESHDEPLOY_API", api_}, {"NO_COLOR", "1"}, {"MESHDEPLOY_IDENTITY", identity.string()}},
      timeout);
}

}  // namespace meshdeploy::test

#include "node/agent/hook_runner.h"

#include "tests/support/temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
#include <signal.h>
#include <string>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace meshdeploy::agent {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace std::chrono_literals;

// Whether `pid` is a live (not zombie) process.
bool process_alive(pid_t pid) {
  const std::string stat = test::read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  const char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

// Waits (at most `limit`) until `pid` has exited; true if it has.
bool wait_until_gone(pid_t pid, milliseconds limit = 3s) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return !process_alive(pid);  // ESRCH: already gone and reaped
  pollfd p{fd, POLLIN, 0};
  const int rc = ::poll(&p, 1, static_cast<int>(limit.count()));
  ::close(fd);
  return rc > 0 || !process_alive(pid);
}

milliseconds since(steady::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady::now() - start);
}

class HookRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // mkdtemp makes the directory 0700; a runas user must be able to enter it.
    ::chmod(dir_.path().c_str(), 0755);
  }

  void TearDown() override {
    for (pid_t pid : leftovers_) {
      if (pid > 0) ::kill(pid, SIGKILL);
    }
  }

  // Writes a script under the temp dir.
  void script(const std::string& rel, std::string_view body, unsigned mode = 0755) {
    test::write_file(dir_ / rel, body, mode);
  }

  // A request for the script `rel` with a short timeout and grace, a log
  // file, a unique token and PIDFILE pointing at a file scripts may use.
  hook_request request(const std::string& rel) {
    static std::atomic<int> counter{0};
    hook_request r;
    r.script = dir_ / rel;
    r.script_name = rel;
    r.working_dir = dir_.path();
    r.log_file = log_path();
    r.timeout = 20s;
    r.kill_grace = 2s;
    r.token = "hook-runner-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    r.env = {{"PIDFILE", pid_file().string()}};
    return r;
  }

  fs::path log_path() const { return dir_ / "logs" / "scripts.log"; }
  fs::path pid_file() const { return dir_ / "pid"; }
  std::string log() const { return test::read_file(log_path()); }

  // The pid a script wrote to PIDFILE (remembered for cleanup), or -1.
  pid_t script_pid() {
    const std::string s = test::read_file(pid_file());
    if (s.empty()) return -1;
    const pid_t pid = static_cast<pid_t>(std::stol(s));
    leftovers_.push_back(pid);
    return pid;
  }

  test::temp_dir dir_{"hook-runner-test"};
  std::vector<pid_t> leftovers_;
};

TEST(ScriptErrorCodeTest, UsesCodeDeployNames) {
  EXPECT_EQ(to_string(script_error_code::success), "Success");
  EXPECT_EQ(to_string(script_error_code::script_missing), "ScriptMissing");
  EXPECT_EQ(to_string(script_error_code::script_not_executable), "ScriptNotExecutable");
  EXPECT_EQ(to_string(script_error_code::script_timed_out), "ScriptTimedOut");
  EXPECT_EQ(to_string(script_error_code::script_failed), "ScriptFailed");
  EXPECT_EQ(to_string(script_error_code::unknown_error), "UnknownError");
}

TEST_F(HookRunnerTest, SuccessfulScriptIsReportedAndItsOutputLogged) {
  script("scripts/ok.sh", "#!/bin/sh\necho hello from ok\n");
  int started_pid = 0;
  const hook_outcome out = run_hook(request("scripts/ok.sh"), [&](int pid) { started_pid = pid; });
  EXPECT_EQ(out.code, script_error_code::success) << out.message;
  EXPECT_EQ(out.exit_status, 0);
  EXPECT_EQ(out.message, "");
  EXPECT_EQ(out.log_tail, "hello from ok\n");
  EXPECT_GT(out.pid, 0);
  EXPECT_EQ(started_pid, out.pid);
  const std::string text = log();
  EXPECT_THAT(text, StartsWith("["));
  EXPECT_THAT(text, HasSubstr("] Script - scripts/ok.sh\nhello from ok\n"));
  EXPECT_THAT(text, Not(HasSubstr("Success")));
}

TEST_F(HookRunnerTest, LogIsAppendedNotTruncated) {
  test::write_file(log_path(), "earlier line\n");
  script("a.sh", "#!/bin/sh\nprintf 'no newline'\n");
  script("b.sh", "#!/bin/sh\necho second\n");
  ASSERT_EQ(run_hook(request("a.sh")).code, script_error_code::success);
  ASSERT_EQ(run_hook(request("b.sh")).code, script_error_code::success);
  const std::string text = log();
  EXPECT_THAT(text, StartsWith("earlier line\n["));
  // The next header starts on its own line even if the output did not end one.
  EXPECT_THAT(text, HasSubstr("] Script - a.sh\nno newline\n["));
  EXPECT_THAT(text, EndsWith("] Script - b.sh\nsecond\n"));
}

TEST_F(HookRunnerTest, NonZeroExitIsScriptFailedWithExitCode) {
  script("scripts/fail.sh", "#!/bin/sh\necho about to fail\nexit 3\n");
  const hook_outcome out = run_hook(request("scripts/fail.sh"));
  EXPECT_EQ(out.code, script_error_code::script_failed);
  EXPECT_EQ(out.exit_status, 3);
  EXPECT_EQ(out.message, "Script at specified location: scripts/fail.sh failed with exit code 3");
  EXPECT_EQ(out.log_tail, "about to fail\n");
  EXPECT_THAT(log(), HasSubstr("about to fail\n["));
  EXPECT_THAT(log(), HasSubstr("] Script - scripts/fail.sh ScriptFailed: Script at specified "
                               "location: scripts/fail.sh failed with exit code 3\n"));
}

TEST_F(HookRunnerTest, DeathBySignalIsScriptFailedWith128PlusSignal) {
  script("die.sh", "#!/bin/sh\nkill -KILL $$\n");
  const hook_outcome out = run_hook(request("die.sh"));
  EXPECT_EQ(out.code, script_error_code::script_failed);
  EXPECT_EQ(out.exit_status, 128 + SIGKILL);
  EXPECT_THAT(out.message, HasSubstr("die.sh was killed by SIGKILL"));
}

TEST_F(HookRunnerTest, StderrIsCapturedInterleavedWithStdout) {
  script("both.sh", "#!/bin/sh\necho to-out\necho to-err >&2\necho out-again\n");
  const hook_outcome out = run_hook(request("both.sh"));
  EXPECT_EQ(out.code, script_error_code::success) << out.message;
  EXPECT_EQ(out.log_tail, "to-out\nto-err\nout-again\n");
  EXPECT_THAT(log(), HasSubstr("to-out\nto-err\nout-again\n"));
}

TEST_F(HookRunnerTest, EnvironmentIsCleanPlusRequestVariablesAndToken) {
  ::setenv("MESHDEPLOY_TEST_LEAK", "leaked", 1);
  script("env.sh",
         "#!/bin/sh\n"
         "echo \"EVENT=$LIFECYCLE_EVENT\"\n"
         "echo \"SPACES=$WITH_SPACES\"\n"
         "echo \"TOKEN=$MESHDEPLOY_HOOK_TOKEN\"\n"
         "echo \"LEAK=${MESHDEPLOY_TEST_LEAK-unset}\"\n"
         "echo \"LANG=$LANG\"\n"
         "echo \"USER=$USER LOGNAME=$LOGNAME\"\n"
         "echo \"PATH=$PATH\"\n");
  hook_request r = request("env.sh");
  r.env.push_back({"LIFECYCLE_EVENT", "ApplicationStart"});
  r.env.push_back({"WITH_SPACES", "a b  c"});
  r.env.push_back({"LANG", "C"});  // overrides the base value
  const hook_outcome out = run_hook(r);
  ::unsetenv("MESHDEPLOY_TEST_LEAK");
  ASSERT_EQ(out.code, script_error_code::success) << out.message;
  EXPECT_THAT(out.log_tail, HasSubstr("EVENT=ApplicationStart\n"));
  EXPECT_THAT(out.log_tail, HasSubstr("SPACES=a b  c\n"));
  EXPECT_THAT(out.log_tail, HasSubstr("TOKEN=" + r.token + "\n"));
  EXPECT_THAT(out.log_tail, HasSubstr("LEAK=unset\n"));
  EXPECT_THAT(out.log_tail, HasSubstr("LANG=C\n"));
  if (::geteuid() == 0) {
    EXPECT_THAT(out.log_tail, HasSubstr("USER=root LOGNAME=root\n"));
  }
  EXPECT_THAT(out.log_tail, HasSubstr("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"));
}

TEST_F(HookRunnerTest, InvalidEnvironmentNameIsRejectedWithoutStarting) {
  script("env.sh", "#!/bin/sh\necho ran > \"$PIDFILE\"\n");
  hook_request r = request("env.sh");
  r.env.push_back({"BAD=NAME", "x"});
  const hook_outcome out = run_hook(r);
  EXPECT_EQ(out.code, script_error_code::unknown_error);
  EXPECT_THAT(out.message, HasSubstr("BAD=NAME"));
  EXPECT_EQ(out.pid, -1);
  EXPECT_FALSE(fs::exists(pid_file()));
}

TEST_F(HookRunnerTest, RunsInTheWorkingDirectory) {
  script("rev/scripts/pwd.sh", "#!/bin/sh\npwd -P\n");
  hook_request r = request("rev/scripts/pwd.sh");
  r.working_dir = dir_ / "rev";
  const hook_outcome out = run_hook(r);
  ASSERT_EQ(out.code, script_error_code::success) << out.message;
  EXPECT_EQ(out.log_tail, fs::canonical(dir_ / "rev").string() + "\n");
}

TEST_F(HookRunnerTest, RelativeScriptPathIsTakenFromTheWorkingDirectory) {
  script("rev/scripts/rel.sh", "#!/bin/sh\necho relative ok\n");
  hook_request r = request("rev/scripts/rel.sh");
  r.script = "scripts/rel.sh";
  r.working_dir = dir_ / "rev";
  const hook_outcome out = run_hook(r);
  EXPECT_EQ(out.code, script_error_code::success) << out.message;
  EXPECT_EQ(out.log_tail, "relative ok\n");
}

TEST_F(HookRunnerTest, LogTailIsTheLastFourKiBOfALargeOutput) {
  // ~250 KB: far more than the pipe buffer, so reading must keep up.
  script("big.sh", "#!/bin/sh\nseq -f 'line %06g of the output' 1 10000\necho last line\n");
  const hook_outcome out = run_hook(request("big.sh"));
  ASSERT_EQ(out.code, script_error_code::success) << out.message;
  std::string all;
  for (int i = 1; i <= 10000; ++i) {
    char line[64];
    std::snprintf(line, sizeof line, "line %06d of the output\n", i);
    all += line;
  }
  all += "last line\n";
  EXPECT_EQ(out.log_tail.size(), hook_log_tail_bytes);
  EXPECT_EQ(out.log_tail, all.substr(all.size() - hook_log_tail_bytes));
  EXPECT_THAT(log(), HasSubstr("] Script - big.sh\n" + all));
}

TEST_F(HookRunnerTest, LogTailStartsOnAUtf8CharacterBoundary) {
  // 2000 euro signs (3 bytes each): 4096 bytes back from the end falls on the
  // last byte of a character, which is dropped.
  script("utf8.sh",
         "#!/bin/sh\ni=0\nwhile [ $i -lt 2000 ]; do printf '\\342\\202\\254'; i=$((i+1)); done\n");
  const hook_outcome out = run_hook(request("utf8.sh"));
  ASSERT_EQ(out.code, script_error_code::success) << out.message;
  ASSERT_EQ(out.log_tail.size(), 4095u);
  EXPECT_EQ(static_cast<unsigned char>(out.log_tail[0]), 0xE2);
  EXPECT_EQ(out.log_tail.substr(0, 3), "\xE2\x82\xAC");
}

TEST_F(HookRunnerTest, MissingScriptIsReportedWithoutStarting) {
  bool started = false;
  const hook_outcome out = run_hook(request("scripts/nope.sh"), [&](int) { started = true; });
  EXPECT_EQ(out.code, script_error_code::script_missing);
  EXPECT_EQ(out.message,
            "Script does not exist at specified location: " + (dir_ / "scripts/nope.sh").string());
  EXPECT_EQ(out.pid, -1);
  EXPECT_EQ(out.exit_status, -1);
  EXPECT_FALSE(started);
  EXPECT_THAT(log(), HasSubstr("] Script - scripts/nope.sh ScriptMissing: Script does not exist"));
}

TEST_F(HookRunnerTest, ScriptWithoutExecuteBitIsNotExecutable) {
  script("noexec.sh", "#!/bin/sh\necho ran > \"$PIDFILE\"\n", 0644);
  bool started = false;
  const hook_outcome out = run_hook(request("noexec.sh"), [&](int) { started = true; });
  EXPECT_EQ(out.code, script_error_code::script_not_executable);
  EXPECT_THAT(out.message, HasSubstr("noexec.sh is not executable by user"));
  EXPECT_THAT(out.message, HasSubstr("mode 0644"));
  EXPECT_EQ(out.pid, -1);
  EXPECT_FALSE(started);
  EXPECT_FALSE(fs::exists(pid_file()));
}

TEST_F(HookRunnerTest, DirectoryIsNotExecutable) {
  fs::create_directories(dir_ / "scripts/dir.sh");
  const hook_outcome out = run_hook(request("scripts/dir.sh"));
  EXPECT_EQ(out.code, script_error_code::script_not_executable);
  EXPECT_THAT(out.message, HasSubstr("is a directory"));
}

TEST_F(HookRunnerTest, BadInterpreterIsScriptFailedWithClearMessage) {
  script("bad.sh", "#!/nonexistent/interpreter\necho never\n");
  const hook_outcome out = run_hook(request("bad.sh"));
  EXPECT_EQ(out.code, script_error_code::script_failed);
  EXPECT_EQ(out.exit_status, 127);
  EXPECT_THAT(out.message, HasSubstr("Script at specified location: bad.sh could not be started: "
                                     "execve: No such file or directory"));
  EXPECT_THAT(out.message, HasSubstr("#! line"));
  EXPECT_GT(out.pid, 0);
}

TEST_F(HookRunnerTest, ScriptWithoutShebangIsRunBySh) {
  script("plain.sh", "echo run by sh\n");
  const hook_outcome out = run_hook(request("plain.sh"));
  EXPECT_EQ(out.code, script_error_code::success) << out.message;
  EXPECT_EQ(out.log_tail, "run by sh\n");
}

TEST_F(HookRunnerTest, UnwritableLogFileIsUnknownErrorWithoutStarting) {
  script("ok.sh", "#!/bin/sh\necho ran > \"$PIDFILE\"\n");
  hook_request r = request("ok.sh");
  r.log_file = dir_.path();  // a directory
  const hook_outcome out = run_hook(r);
  EXPECT_EQ(out.code, script_error_code::unknown_error);
  EXPECT_THAT(out.message, HasSubstr("cannot open the script log " + dir_.path().string()));
  EXPECT_FALSE(fs::exists(pid_file()));
}

TEST_F(HookRunnerTest, TimeoutKillsTheScriptAndItsGrandchildren) {
  script("hang.sh",
         "#!/bin/sh\n"
         "sleep 1000 &\n"
         "echo $! > \"$PIDFILE\"\n"
         "echo waiting\n"
         "wait\n");
  hook_request r = request("hang.sh");
  r.timeout = 500ms;
  r.kill_grace = 2s;
  const auto start = steady::now();
  const hook_outcome out = run_hook(r);
  const milliseconds took = since(start);
  const pid_t grandchild = script_pid();
  EXPECT_EQ(out.code, script_error_code::script_timed_out);
  EXPECT_EQ(out.message,
            "Script at specified location: hang.sh failed to complete in 500 ms; its process "
            "group got SIGTERM");
  EXPECT_EQ(out.log_tail, "waiting\n");
  EXPECT_GE(took, 500ms);
  EXPECT_LT(took, r.timeout + r.kill_grace + 1500ms);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(wait_until_gone(grandchild));
  EXPECT_FALSE(process_alive(out.pid));
  EXPECT_THAT(log(), HasSubstr("ScriptTimedOut"));
}

TEST_F(HookRunnerTest, TimeoutEscalatesToSigkillWhenTermIsIgnored) {
  // `trap '' TERM` is inherited by the children, so nothing dies of SIGTERM.
  script("stubborn.sh",
         "#!/bin/sh\n"
         "trap '' TERM\n"
         "sleep 1000 &\n"
         "echo $! > \"$PIDFILE\"\n"
         "while :; do sleep 1; done\n");
  hook_request r = request("stubborn.sh");
  r.timeout = 300ms;
  r.kill_grace = 700ms;
  const auto start = steady::now();
  const hook_outcome out = run_hook(r);
  const milliseconds took = since(start);
  const pid_t grandchild = script_pid();
  EXPECT_EQ(out.code, script_error_code::script_timed_out);
  EXPECT_EQ(out.exit_status, 128 + SIGKILL);
  EXPECT_THAT(out.message, HasSubstr("then SIGKILL 700 ms later"));
  EXPECT_GE(took, r.timeout + r.kill_grace);
  EXPECT_LT(took, r.timeout + r.kill_grace + 1500ms);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(wait_until_gone(grandchild));
}

TEST_F(HookRunnerTest, TimeoutKillsGroupMembersThatOutliveTheScript) {
  // The script dies of SIGTERM at once; its child ignores SIGTERM and must be
  // SIGKILLed when the grace period ends.
  script("orphan.sh",
         "#!/bin/sh\n"
         "(trap '' TERM; exec sleep 1000) &\n"
         "echo $! > \"$PIDFILE\"\n"
         "sleep 1000\n");
  hook_request r = request("orphan.sh");
  r.timeout = 300ms;
  r.kill_grace = 600ms;
  const auto start = steady::now();
  const hook_outcome out = run_hook(r);
  const milliseconds took = since(start);
  const pid_t grandchild = script_pid();
  EXPECT_EQ(out.code, script_error_code::script_timed_out);
  EXPECT_THAT(out.message, HasSubstr("then SIGKILL 600 ms later"));
  EXPECT_GE(took, r.timeout + r.kill_grace);
  EXPECT_LT(took, r.timeout + r.kill_grace + 1500ms);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(wait_until_gone(grandchild));
}

TEST_F(HookRunnerTest, TimeoutKillsDescendantsThatLeftTheGroupByToken) {
  script("detach.sh",
         "#!/bin/sh\n"
         "setsid sleep 1000 >/dev/null 2>&1 &\n"
         "echo $! > \"$PIDFILE\"\n"
         "sleep 1000\n");
  hook_request r = request("detach.sh");
  r.timeout = 400ms;
  const hook_outcome out = run_hook(r);
  const pid_t detached = script_pid();
  EXPECT_EQ(out.code, script_error_code::script_timed_out);
  EXPECT_THAT(out.message, HasSubstr("1 process(es) that had left the group were killed"));
  ASSERT_GT(detached, 0);
  EXPECT_TRUE(wait_until_gone(detached));
}

TEST_F(HookRunnerTest, BackgroundProcessHoldingTheOutputDoesNotHangTheHook) {
  // CodeDeploy's classic hang: the daemon inherits stdout and never closes it.
  script("daemon.sh",
         "#!/bin/sh\n"
         "sleep 30 &\n"
         "echo $! > \"$PIDFILE\"\n"
         "echo started\n"
         "exit 0\n");
  const auto start = steady::now();
  const hook_outcome out = run_hook(request("daemon.sh"));
  const milliseconds took = since(start);
  const pid_t daemon = script_pid();
  EXPECT_EQ(out.code, script_error_code::success) << out.message;
  EXPECT_EQ(out.log_tail, "started\n");
  EXPECT_LT(took, 800ms);
  ASSERT_GT(daemon, 0);
  EXPECT_TRUE(process_alive(daemon));  // a successful hook's daemon keeps running
}

TEST_F(HookRunnerTest, BackgroundWriterAfterExitIsNotWaitedFor) {
  script("spam.sh",
         "#!/bin/sh\n"
         "(while :; do echo spam; done) &\n"
         "echo started\n");
  const auto start = steady::now();
  const hook_outcome out = run_hook(request("spam.sh"));
  const milliseconds took = since(start);
  if (out.pid > 0) ::kill(-out.pid, SIGKILL);
  EXPECT_EQ(out.code, script_error_code::success) << out.message;
  EXPECT_LT(took, 800ms);
  EXPECT_THAT(log(), HasSubstr("started\n"));
}

TEST_F(HookRunnerTest, ChildGetsOnlyStandardDescriptors) {
  // A descriptor the node left inheritable must not reach the script.
  const fs::path marker = dir_ / "inheritable-marker";
  const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT, 0644);  // no O_CLOEXEC
  ASSERT_GE(fd, 0);
  script("fds.sh", "#!/bin/sh\nls -l /proc/$$/fd/\n");
  const hook_outcome out = run_hook(request("fds.sh"));
  ::close(fd);
  ASSERT_EQ(out.code, script_error_code::success) << out.message;
  EXPECT_THAT(out.log_tail, HasSubstr("/dev/null"));
  EXPECT_THAT(out.log_tail, Not(HasSubstr("inheritable-marker")));
  EXPECT_THAT(out.log_tail, Not(HasSubstr("scripts.log")));
}

TEST_F(HookRunnerTest, SignalDispositionsAndMaskAreResetInTheChild) {
  struct sigaction ign {};
  struct sigaction old_pipe {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &old_pipe);
  sigset_t usr1;
  sigset_t old_mask;
  ::sigemptyset(&usr1);
  ::sigaddset(&usr1, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);
  // exec: a waiting dash blocks signals itself, so look at the process we started.
  script("sig.sh", "#!/bin/sh\nexec grep -E '^Sig(Blk|Ign)' /proc/self/status\n");
  const hook_outcome out = run_hook(request("sig.sh"));
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  ASSERT_EQ(out.code, script_error_code::success) << out.message;
  EXPECT_EQ(out.log_tail, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

TEST_F(HookRunnerTest, ThrowingStartCallbackKillsTheScript) {
  script("slow.sh", "#!/bin/sh\nsleep 1000\n");
  const hook_outcome out =
      run_hook(request("slow.sh"), [](int) { throw std::runtime_error("journal write failed"); });
  EXPECT_EQ(out.code, script_error_code::unknown_error);
  EXPECT_THAT(out.message, HasSubstr("journal write failed"));
  ASSERT_GT(out.pid, 0);
  EXPECT_FALSE(process_alive(out.pid));
}

TEST_F(HookRunnerTest, RunasSwitchesUserGroupsAndHome) {
  if (::geteuid() != 0) GTEST_SKIP() << "runas needs root";
  script("who.sh",
         "#!/bin/sh\n"
         "id -un\n"
         "id -G\n"
         "echo \"HOME=$HOME USER=$USER LOGNAME=$LOGNAME\"\n"
         "pwd -P\n");
  hook_request r = request("who.sh");
  r.runas = "nobody";
  const hook_outcome out = run_hook(r);
  ASSERT_EQ(out.code, script_error_code::success) << out.message;
  EXPECT_EQ(out.log_tail, "nobody\n65534\nHOME=/nonexistent USER=nobody LOGNAME=nobody\n" +
                              fs::canonical(dir_.path()).string() + "\n");
  struct stat st {};
  ASSERT_EQ(::stat(log_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);  // the log stays the node's
}

TEST_F(HookRunnerTest, RunasUnknownUserIsUnknownErrorWithoutStarting) {
  script("ok.sh", "#!/bin/sh\necho ran > \"$PIDFILE\"\n");
  hook_request r = request("ok.sh");
  r.runas = "no-such-user-meshdeploy";
  const hook_outcome out = run_hook(r);
  EXPECT_EQ(out.code, script_error_code::unknown_error);
  EXPECT_EQ(out.message,
            "Script at specified location: ok.sh cannot run as user 'no-such-user-meshdeploy': "
            "no such user");
  EXPECT_EQ(out.pid, -1);
  EXPECT_FALSE(fs::exists(pid_file()));
}

TEST_F(HookRunnerTest, ScriptExecutableOnlyByOwnerIsNotExecutableForRunasUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "runas needs root";
  script("mine.sh", "#!/bin/sh\necho ran > \"$PIDFILE\"\n", 0744);
  hook_request r = request("mine.sh");
  r.runas = "nobody";
  const hook_outcome out = run_hook(r);
  EXPECT_EQ(out.code, script_error_code::script_not_executable);
  EXPECT_THAT(out.message, HasSubstr("is not executable by user nobody (mode 0744"));
  EXPECT_FALSE(fs::exists(pid_file()));
}

TEST_F(HookRunnerTest, RunasUserWhoCannotEnterTheWorkingDirectoryFailsClearly) {
  if (::geteuid() != 0) GTEST_SKIP() << "runas needs root";
  script("rev/ok.sh", "#!/bin/sh\necho ran\n");
  fs::create_directories(dir_ / "private");
  ::chmod((dir_ / "private").c_str(), 0700);
  hook_request r = request("rev/ok.sh");
  r.runas = "nobody";
  r.working_dir = dir_ / "private";
  const hook_outcome out = run_hook(r);
  EXPECT_EQ(out.code, script_error_code::script_failed);
  EXPECT_EQ(out.exit_status, 127);
  EXPECT_THAT(out.message,
              HasSubstr("could not be started: chdir to " + (dir_ / "private").string() +
                        " as user nobody: Permission denied"));
}

TEST_F(HookRunnerTest, KillProcessesWithTokenKillsADetachedProcessAndOnlyIt) {
  script("detach.sh",
         "#!/bin/sh\n"
         "setsid sleep 1000 </dev/null >/dev/null 2>&1 &\n"
         "echo $! > \"$PIDFILE\"\n");
  hook_request first = request("detach.sh");
  ASSERT_EQ(run_hook(first).code, script_error_code::success);
  const pid_t victim = script_pid();
  // A second one whose token extends the first: must not match.
  hook_request second = request("detach.sh");
  second.token = first.token + "-other";
  ASSERT_EQ(run_hook(second).code, script_error_code::success);
  const pid_t bystander = script_pid();
  ASSERT_GT(victim, 0);
  ASSERT_GT(bystander, 0);
  ASSERT_TRUE(process_alive(victim));

  EXPECT_EQ(kill_processes_with_token(first.token), 1);
  EXPECT_TRUE(wait_until_gone(victim, 100ms));  // already dead when the call returns
  EXPECT_TRUE(process_alive(bystander));
  EXPECT_EQ(kill_processes_with_token(first.token), 0);
  EXPECT_EQ(kill_processes_with_token(""), 0);
  EXPECT_EQ(kill_processes_with_token(second.token), 1);
  EXPECT_TRUE(wait_until_gone(bystander));
}

TEST_F(HookRunnerTest, ConcurrentHooksRunInParallelAndStayApart) {
  script("par.sh",
         "#!/bin/sh\necho \"start $HOOK_ID\"\nsleep 0.5\necho \"end $HOOK_ID\"\nexit $HOOK_ID\n");
  constexpr int n = 4;
  std::vector<hook_outcome> outs(n);
  std::vector<std::thread> threads;
  const auto start = steady::now();
  for (int i = 0; i < n; ++i) {
    hook_request r = request("par.sh");
    r.env.push_back({"HOOK_ID", std::to_string(i)});
    threads.emplace_back([&outs, i, r] { outs[i] = run_hook(r); });
  }
  for (auto& t : threads) t.join();
  const milliseconds took = since(start);
  EXPECT_LT(took, 1500ms);  // 2 s if they ran one after another
  for (int i = 0; i < n; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(outs[i].exit_status, i);
    EXPECT_EQ(outs[i].code, i == 0 ? script_error_code::success : script_error_code::script_failed);
    const std::string id = std::to_string(i);
    EXPECT_EQ(outs[i].log_tail, "start " + id + "\nend " + id + "\n");
  }
  const std::string text = log();
  for (int i = 0; i < n; ++i) {
    EXPECT_THAT(text, HasSubstr("end " + std::to_string(i) + "\n"));
  }
}

}  // namespace
}  // namespace meshdeploy::agent

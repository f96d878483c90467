// Runs one lifecycle hook script as a child process (CodeDeploy-agent style):
// own session and process group, clean environment, optional `runas` user,
// output appended to the deployment's script log, per-script timeout that
// kills the whole process group. docs/hooks.md describes the behaviour seen
// by script authors.
//
// Threading: every function here is blocking and thread-safe; several hooks
// may run at once from different threads. Call them from a worker thread,
// never from the network thread. No SIGCHLD handler is installed and no
// process-wide state (signal dispositions, cwd, environment) is changed.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshdeploy::agent {

// How a script ended, with CodeDeploy's names (see to_string).
enum class script_error_code {
  success,                // exited with status 0
  script_missing,         // the file does not exist (nothing was started)
  script_not_executable,  // no execute permission for the user it runs as (nothing was started)
  script_timed_out,       // still running at the timeout; its process group was killed
  script_failed,          // non-zero exit, killed by a signal, or could not be exec'd
  unknown_error,          // anything else (unknown runas user, unusable log file, fork failed...)
};

// CodeDeploy's spelling: "Success", "ScriptMissing", "ScriptNotExecutable",
// "ScriptTimedOut", "ScriptFailed", "UnknownError".
std::string_view to_string(script_error_code code);

// Size of hook_outcome::log_tail.
inline constexpr std::size_t hook_log_tail_bytes = 4096;

// What to run and how.
struct hook_request {
  // Path of the script (inside the extracted revision). Should be absolute; a
  // relative path is taken relative to working_dir. It is executed directly
  // (the kernel honours its #! line); a file without #! is run by /bin/sh.
  std::filesystem::path script;
  // As written in the appspec ("scripts/start.sh"); used in messages and the log.
  std::string script_name;
  // The child's working directory (the revision's root). Empty = the
  // script's own directory. Must exist.
  std::filesystem::path working_dir;
  // Added to a clean base environment (PATH, HOME, USER, LOGNAME, SHELL,
  // LANG); an entry with the same name as a base variable replaces it. Names
  // must be non-empty and contain neither '=' nor NUL.
  std::vector<std::pair<std::string, std::string>> env;
  // Wall-clock limit from the start of the script. Must be positive.
  std::chrono::milliseconds timeout{3600000};
  // Empty = run as the node's own user. Otherwise a user name: the child
  // takes that user's uid, primary gid and supplementary groups (the
  // initgroups list) before exec, and HOME/USER/LOGNAME are that user's.
  std::string runas;
  // Appended to (created with its parent directories if missing): a header
  // line "[<UTC time>] Script - <script_name>", then the script's stdout and
  // stderr as they arrive, then, if the script did not succeed, one line
  // with the error code and message. Empty = no log file. Written by this
  // process, never by the child, so it stays owned by the node's user.
  std::filesystem::path log_file;
  // On timeout: SIGTERM to the process group, SIGKILL to it this much later
  // (earlier if the group is already empty).
  std::chrono::milliseconds kill_grace{5000};
  // Unique id placed in the child's environment as MESHDEPLOY_HOOK_TOKEN so
  // kill_processes_with_token can find its leftovers. Empty = not set.
  std::string token;
};

struct hook_outcome {
  script_error_code code = script_error_code::unknown_error;
  int exit_status = -1;  // exit code, or 128+signal; -1 when the script never ran
  // CodeDeploy-like, names the script: "Script at specified location:
  // scripts/x.sh failed with exit code 3". Empty on success.
  std::string message;
  // The last hook_log_tail_bytes bytes of this script's output (stdout and
  // stderr interleaved), cut forward to a UTF-8 character boundary.
  std::string log_tail;
  std::chrono::milliseconds duration{0};  // from start to exit (0 if never started)
  int pid = -1;  // the child's pid, which is also its process group id; -1 if never started
};

// Runs the script and blocks until it exits or times out. Never throws.
//
// - The outcome is decided when the script process itself exits, not when
//   its output pipe closes: background processes it started (daemons) may
//   keep the pipe open and keep running; whatever they wrote before the
//   script exited is collected for at most ~100 ms, then the pipe is closed.
//   Their later writes go nowhere (EPIPE/SIGPIPE for them).
// - A missing script, a script without execute permission for the user it
//   runs as, an unknown runas user, an invalid request or an unopenable log
//   file are reported without starting anything (pid stays -1).
// - If exec itself fails in the child (bad #! interpreter, cwd not
//   accessible for the runas user, ...), the code is script_failed with
//   exit_status 127 and a message naming the step and the errno text.
// - Timeout: SIGTERM to the whole process group, SIGKILL to it kill_grace
//   later (as soon as the group is empty, no further waiting); then, if a
//   token is set, every process carrying the token (descendants that left
//   the group with setsid) is SIGKILLed too. Code script_timed_out.
// - The child has its own session and process group, stdin /dev/null, all
//   signal dispositions default, an empty signal mask, and no descriptors
//   other than 0, 1, 2.
// - `on_started(pid)`, if set, runs in the calling thread right after the
//   fork (e.g. to journal the pgid). If it throws, the process group is
//   SIGKILLed and the outcome is unknown_error.
hook_outcome run_hook(const hook_request& request,
                      const std::function<void(int pid)>& on_started = {});

// SIGKILLs every process on this host whose environment contains the entry
// MESHDEPLOY_HOOK_TOKEN=<token> exactly (scanning /proc/*/environ), i.e. the
// leftovers of a hook whose node was killed, and waits (at most ~2 s) until
// they are dead. Rescans a few times to catch processes forked during the
// sweep. Returns how many processes it killed. An empty token matches
// nothing and returns 0. Needs permission to read the processes' environ
// (root, or the same user). Thread-safe; never throws.
int kill_processes_with_token(std::string_view token);

}  // namespace meshdeploy::agent

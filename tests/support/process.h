// Real processes for integration tests: a meshdeploy node started from the
// built binary, and one-shot CLI invocations with captured output.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace meshdeploy::test {

struct command_result {
  int exit_code = -1;  // or 128+signal
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] is a path) with extra environment variables, waits at
// most `timeout` (then SIGKILLs it and returns exit_code -1). Output is captured.
command_result run_command(const std::vector<std::string>& argv,
                           const std::vector<std::pair<std::string, std::string>>& env = {},
                           std::chrono::milliseconds timeout = std::chrono::seconds(120));

// The built `meshdeploy` binary.
std::string meshdeploy_binary();
// Path of a file under the source tree (e.g. "examples/webapp").
std::filesystem::path source_path(const std::string& rel);

// The key material of a test cluster, made by `meshdeploy cluster init --dir DIR --operator
// tester` on first use of DIR (keyring.txt, admin.key/.pub, tester.key/.pub, tester.grant).
// Returns false (and a message in *why) when the command fails.
bool ensure_cluster_keys(const std::filesystem::path& dir, std::string* why = nullptr);

// A `meshdeploy node run` child process with its own data dir; started in
// the constructor (waits until the API answers), SIGKILLed in the destructor
// unless stopped before.
class node_process {
 public:
  // `extra_args` are appended to `node run` (e.g. --keyring, --bind, --join). A node needs a
  // keyring, the admin public key and a grant for the test operator: unless extra_args name
  // them, the node gets --keyring/--admin-pub/--grant from the cluster keys in
  // <data_dir's parent>/cluster (ensure_cluster_keys) and --bind 127.0.0.1:0.
  node_process(std::string name, std::filesystem::path data_dir, std::filesystem::path install_root,
               std::vector<std::string> tags, std::vector<std::string> extra_args = {});
  ~node_process();
  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  // Starts (or restarts) the process and waits for <data>/api.addr; false on failure.
  bool start();
  // SIGKILL, then reap.
  void kill_hard();
  // SIGTERM, then reap (bounded; SIGKILL after 20 s).
  int stop();

  // HOST:PORT of the API.
  const std::string& api() const { return api_; }
  int pid() const { return pid_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  std::filesystem::path log_path() const { return data_dir_.parent_path() / (name_ + ".log"); }

  // Runs the CLI against this node as the test operator (MESHDEPLOY_IDENTITY = the cluster's
  // tester.key).
  command_result cli(std::vector<std::string> args,
                     std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;
  // Runs the CLI as the operator whose key file is `identity` ("" = no identity).
  command_result cli_as(const std::filesystem::path& identity, std::vector<std::string> args,
                        std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;

  // The directory holding this node's cluster keys (see the constructor).
  std::filesystem::path cluster_dir() const { return data_dir_.parent_path() / "cluster"; }

 private:
  std::string name_;
  std::filesystem::path data_dir_;
  std::filesystem::path install_root_;
  std::vector<std::string> tags_;
  std::vector<std::string> extra_args_;
  int pid_ = -1;
  std::string api_;
};

}  // namespace meshdeploy::test

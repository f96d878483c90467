// The `meshdeploy` command line: parses arguments, calls a node's API (or
// runs the node), renders results. Exit codes (DESIGN.md §10): 0 ok; 1 the
// deployment failed or was stopped (with --wait); 2 usage or validation
// error; 3 no node reachable; 4 permission denied.
#pragma once

namespace meshdeploy::cli {

enum exit_code : int {
  exit_ok = 0,
  exit_failed = 1,
  exit_usage = 2,
  exit_unreachable = 3,
  exit_denied = 4
};

// Runs the command line; returns the process exit code.
int run(int argc, char** argv);

}  // namespace meshdeploy::cli

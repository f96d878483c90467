// `meshdeploy node run` (the daemon, configured by flags, MESHDEPLOY_NODE_* variables and a YAML
// file: cli/node_config.h) and `meshdeploy node check-config FILE` (validates without starting).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace meshdeploy::cli {

// Adds the `node` command and its subcommands to `app`. Their callbacks store the process exit
// code in `code`. `output` is the global --output value ("table" or "json"). Both references must
// outlive app.parse().
void add_node_commands(CLI::App& app, const std::string& output, int& code);

}  // namespace meshdeploy::cli

// Shell completion scripts generated from the CLI11 command tree, so they list exactly the
// commands and options the binary has (no hand-kept list to drift): `meshdeploy completion bash`
// and `meshdeploy completion zsh`.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace meshdeploy::cli {

// A bash script defining _meshdeploy and `complete -F _meshdeploy meshdeploy`. It completes
// subcommands, the long options of the command typed so far, and file names after an option
// that takes a value (and for positional arguments). `app` is the root; `name` the program name.
std::string bash_completion(const CLI::App& app, const std::string& name);

// A zsh script (#compdef): works from a directory on $fpath (as _meshdeploy) and when sourced.
std::string zsh_completion(const CLI::App& app, const std::string& name);

// Adds `completion bash|zsh` to `app`; its callback prints the script for the whole tree (taken
// when it runs, after every command was added). `code` must outlive app.parse().
void add_completion_command(CLI::App& app, int& code);

}  // namespace meshdeploy::cli

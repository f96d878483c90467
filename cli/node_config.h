// The settings of `meshdeploy node run`: one table (node_settings()) names every setting once and
// from it come the command-line flag (--data-dir), the environment variable
// (MESHDEPLOY_NODE_DATA_DIR) and the YAML key of the config file (data_dir), so the three cannot
// drift. Precedence: flag > environment > file > built-in default (docs/operations.md).
//
// Pure functions over text: no I/O except load_node_config_file (reads one file). Every input is
// hostile: unknown keys, bad values and malformed YAML are errors that name the key and where it
// came from ("node.yaml:7: max_upload_rate: ...", "MESHDEPLOY_NODE_TAG: ...", "--bind: ...").
#pragma once

#include "node/node.h"
#include "storage/result.h"

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::cli {

// One setting of `node run`.
struct node_setting {
  std::string key;           // the flag without "--", e.g. "data-dir"
  std::string help;          // one line for --help and the docs
  std::string default_text;  // shown in --help; "" when there is none
  bool list = false;         // repeatable flag / YAML sequence / comma-separated env
  bool boolean = false;      // --key and --no-key; YAML true/false; env true/false
  // Parses the setting's raw text (one element unless `list`) into `o`. Returns "" on success or
  // what is wrong with the value (without saying where it came from: the caller adds that).
  std::function<std::string(node::node_options& o, const std::vector<std::string>& values)> apply;
};

// Every setting, in --help order. The table outlives the program.
const std::vector<node_setting>& node_settings();

// "data-dir" -> "data_dir" (the YAML key) and "MESHDEPLOY_NODE_DATA_DIR" (the variable).
// The NODE_ infix keeps them apart from the client's MESHDEPLOY_API and the hooks' variables.
std::string yaml_key(std::string_view key);
std::string env_name(std::string_view key);

// The raw text of a setting as one source gave it, and where: "--bind",
// "MESHDEPLOY_NODE_BIND" or "/etc/meshdeploy/node.yaml:4".
struct raw_setting {
  std::vector<std::string> values;
  std::string origin;
};
using raw_settings = std::map<std::string, raw_setting>;  // by node_setting::key

// Reads a YAML config file: a mapping of yaml_key()s to scalars (sequences for list settings).
// An empty file is no settings. Errors (with file and line): unreadable or over 1 MiB, YAML
// syntax, a top level that is not a mapping, an unknown or repeated key, a value of the wrong
// shape. Values are only checked by resolve_node_options.
result<raw_settings> load_node_config_file(const std::filesystem::path& file);

// Same, from text (`name` is used in messages in place of a file name).
result<raw_settings> parse_node_config(std::string_view text, const std::string& name);

// The MESHDEPLOY_NODE_* entries of an environment ("NAME=VALUE" strings, as in `environ`).
// List settings split at commas. Errors: a MESHDEPLOY_NODE_* name that is no setting (a typo
// would otherwise be ignored silently); MESHDEPLOY_NODE_CONFIG is the config file, not a setting,
// and is skipped here.
result<raw_settings> node_settings_from_env(const std::vector<std::string>& environment);

// The config file named by the environment (MESHDEPLOY_NODE_CONFIG), or "".
std::string config_file_from_env(const std::vector<std::string>& environment);

// Applies the sources in precedence order (a list setting takes one source's list whole, it does
// not merge) over the defaults of node::node_options. Errors name the origin and the key; the
// last check is that keyring and admin-pub are set (there is no unauthenticated mode).
result<node::node_options> resolve_node_options(const raw_settings& file, const raw_settings& env,
                                                const raw_settings& flags);

// Parses "8G", "512K", "1048576", "6MiB" (K = 1024) into bytes; false when malformed or too big.
bool parse_byte_size(std::string_view text, std::uint64_t& out);

}  // namespace meshdeploy::cli

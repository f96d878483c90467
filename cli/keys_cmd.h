// `meshdeploy keys list|install KEY|use KEY|remove KEY` (docs/cli.md,
// docs/security.md "Key rotation"): cluster-wide key rotation through any
// node's API (node/api/keys_routes.h).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>

namespace CLI {
class App;
}

namespace meshdeploy::cli {

// Adds the `keys` command and its subcommands to `root`. The references are read when a
// command runs and must outlive `root`'s parse: `api` is the node address HOST:PORT, `output`
// "table" or "json"; the exit code (cli.h exit_code) goes to `exit_code`: 0 when every live
// member answered and succeeded, 1 when some did not (listed), 2 for a refused operation (bad
// key, use of a key some member lacks, remove of the primary), 3 unreachable.
void add_keys_commands(CLI::App& root, const std::string& api, const std::string& output,
                       int& exit_code);

// The human rendering of a /v1/keys answer document.
std::string render_keys(const nlohmann::json& doc);

}  // namespace meshdeploy::cli

// `meshdeploy audit` and `meshdeploy audit verify` (docs/cli.md, docs/audit.md):
// read a node's hash-chained audit log through GET /v1/audit and
// GET /v1/audit/verify (node/api/audit_routes.h).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>

namespace CLI {
class App;
}

namespace meshdeploy::cli {

// Adds the `audit` command (with its `verify` subcommand) to `root`. The
// references are read when a command runs (after parsing) and must outlive
// `root`'s parse: `api` is the node address HOST:PORT, `output` is "table" or
// "json", and the command's exit code (cli.h exit_code) is written to `exit_code`:
// `audit` 0 ok, 2 bad --since/--limit, 3 unreachable; `audit verify` 0 when the
// chain verifies, 1 with the first broken link printed otherwise.
void add_audit_commands(CLI::App& root, const std::string& api, const std::string& output,
                        int& exit_code);

// The `audit` table (TIME, WHO, ACTION, RESOURCE, VIA, NODE) for a GET /v1/audit
// document; "No audit entries." when there are none, plus a note when truncated.
std::string render_audit(const nlohmann::json& page);

}  // namespace meshdeploy::cli

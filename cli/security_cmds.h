// `meshdeploy cluster init`, `operator create` and `grant`: making the keys of
// a cluster and granting operators their rights (docs/security.md).
#pragma once

#include "cli/common.h"

#include <CLI/CLI.hpp>

namespace meshdeploy::cli {

// Adds the commands to `root`. `g` and `code` must outlive parsing; callbacks set `code`.
void add_security_commands(CLI::App& root, globals& g, int& code);

}  // namespace meshdeploy::cli

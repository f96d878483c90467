// `meshdeploy cluster init`, `operator create` and `grant`: making the keys of
// a cluster and granting operators their rights (docs/security.md).
#pragma once

#include "cli/common.h"
#include "node/security/identity.h"

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace meshdeploy::cli {

// Adds the commands to `root`. `g` and `code` must outlive parsing; callbacks set `code`.
void add_security_commands(CLI::App& root, globals& g, int& code);

// The admin identity in `admin_key`, for signing a grant of the patterns `allow`, once every
// pattern passed security::validate_pattern; otherwise prints the problem and returns nullopt
// (the caller exits with exit_usage).
std::optional<security::identity> admin_for_grant(const std::vector<std::string>& allow,
                                                  const std::string& admin_key);

}  // namespace meshdeploy::cli

// The AWS-compatible API's CLI pieces (docs/aws-compatibility.md): the `node run` options
// --aws-credentials, --aws-api and --s3-api, and `meshdeploy access-key create`.
#pragma once

#include "cli/common.h"
#include "node/node.h"

#include <CLI/CLI.hpp>

namespace meshdeploy::cli {

// Adds `access-key create`. `g` and `code` must outlive parsing; callbacks set `code`.
void add_aws_commands(CLI::App& root, globals& g, int& code);

}  // namespace meshdeploy::cli

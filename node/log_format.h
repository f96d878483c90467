// How the node writes its log (spdlog's default logger, on standard output): "text", spdlog's
// usual lines, coloured only on a terminal and never when NO_COLOR is set; or "json", one JSON
// object per line for log collectors (docs/operations.md):
//   {"time":"2026-11-29T17:40:01.123Z","level":"info","host":"web-1",
//    "deploymentId":"d-AB12CD34E","msg":"deployment d-AB12CD34E started: ..."}
// `host` is this node's name on every line; `deploymentId` is present when the message names a
// deployment; `event` when it reports a lifecycle event ("deployment d-X: BeforeInstall
// Succeeded in 0.4 s", node/agent/executor.cc). Messages that are not valid UTF-8 (script output)
// get U+FFFD in their place.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace meshdeploy::node {

// Installs the format on spdlog's default logger; call before other threads log.
// REQUIRES: format is "text" or "json" (cli/node_config.cc checks it).
void set_log_format(const std::string& format, const std::string& host);

// One JSON log line (with the trailing '\n'); pure, for tests.
std::string json_log_line(std::chrono::system_clock::time_point time, std::string_view level,
                          std::string_view host, std::string_view message);

// The first deployment id in `text` ("d-" and 9 of [A-Z0-9], not inside a longer word), or "".
std::string_view find_deployment_id(std::string_view text);

// The lifecycle event a message "deployment <id>: <Event> ..." reports, or "".
std::string_view find_lifecycle_event(std::string_view text);

// True when the text log may use colours: `fd` is a terminal and NO_COLOR is unset or empty
// (https://no-color.org).
bool colour_allowed(int fd);

}  // namespace meshdeploy::node

// Rendering of API documents for people: aligned tables and progress lines.
// Pure functions from JSON to text, so they are unit-tested.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace meshdeploy::cli {

// Aligns rows under a header, two spaces between columns.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

// `meshdeploy status`: the deployment, then each host and its events, with
// the failing event's diagnostics and log tail (last `tail_lines` lines).
std::string render_status(const nlohmann::json& deployment, std::size_t tail_lines = 10);

// `meshdeploy deployments`: one line per deployment.
std::string render_deployments(const nlohmann::json& list);

// Progress lines describing what changed between two versions of a deployment
// document (`before` may be null for the first). One line per event that
// started or finished, plus a line when the deployment status changes.
std::vector<std::string> progress_lines(const nlohmann::json& before, const nlohmann::json& after);

// The live view of a deployment for a terminal (`deploy --wait`, `status --watch`): a header with
// an overall bar of `bar_width` cells (hosts done out of all), the counts of hosts done / in
// progress / failed / pending, then one line per host in its update window (InProgress) with its
// current lifecycle event and the event's message (bundle download progress), at most
// `max_hosts` of them (then "... and N more"). Each line is cut to `columns` characters. Ends
// with a newline; the caller redraws it in place.
std::string render_live(const nlohmann::json& deployment, std::size_t columns,
                        std::size_t max_hosts = 8, std::size_t bar_width = 30);

// "1.234s" / "87ms" between two RFC 3339 times; "" when either is missing.
std::string duration_between(const nlohmann::json& start, const nlohmann::json& end);

}  // namespace meshdeploy::cli

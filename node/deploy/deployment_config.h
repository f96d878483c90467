// Deployment configurations: how many hosts must stay healthy, and the pure
// arithmetic that turns that into "hosts out of service at once" (K) and a
// success/failure verdict. See ../docs/deployment-configs.md.
#pragma once

#include "storage/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::deploy {

// host_count/fleet_percent are CodeDeploy's HOST_COUNT/FLEET_PERCENT;
// one_at_a_time is the OneAtATime built-in, whose rules are special-cased.
enum class min_healthy_type { host_count, fleet_percent, one_at_a_time };
std::string_view to_string(min_healthy_type);  // "HOST_COUNT", "FLEET_PERCENT", "ONE_AT_A_TIME"

struct deployment_config {
  std::string name;  // canonical name, e.g. "OneAtATime" (no CodeDeployDefault. prefix)
  min_healthy_type type = min_healthy_type::host_count;
  std::uint32_t value = 0;  // a count, or a percent 0..100
  bool builtin = false;
};

// The three built-ins: OneAtATime, HalfAtATime, AllAtOnce.
const std::vector<deployment_config>& builtin_configs();

// Strips the "CodeDeployDefault." prefix, so both spellings name the same config.
std::string canonical_config_name(std::string_view name);

// Returns the built-in config with that name (either spelling), if any.
std::optional<deployment_config> find_builtin_config(std::string_view name);

// Parses a --min-healthy value: "3" (host count) or "75%" (fleet percent).
// Error (errc::invalid_argument of node/deploy) names the value and the accepted forms.
result<deployment_config> parse_min_healthy(std::string_view name, std::string_view text);

// Checks a custom config's name: 1..100 chars of [A-Za-z0-9._-], not a built-in name,
// not using the CodeDeployDefault. prefix.
result<void> validate_custom_config_name(std::string_view name);

// CodeDeploy refuses a deployment whose minimum cannot be met even before it
// starts (HEALTH_CONSTRAINTS_INVALID): a custom minimum of H >= n hosts. The
// error (errc::invalid_argument) names the config, H and n.
result<void> check_health_constraints(const deployment_config& c, std::uint32_t n);

// Minimum healthy hosts H for n targets (percentages round up).
std::uint32_t min_healthy_hosts(const deployment_config& c, std::uint32_t n);

// K: hosts that may be out of service at once, for n >= 1 targets. Always in [1, n].
// OneAtATime 1, HalfAtATime floor(n/2) (at least 1), AllAtOnce n, custom n - H.
std::uint32_t max_out_of_service(const deployment_config& c, std::uint32_t n);

// Verdict rules (APPSPEC.md "Deployment configurations and success rules").
struct host_tally {
  std::uint32_t targets = 0;
  std::uint32_t succeeded = 0;
  std::uint32_t failed = 0;   // failed or unreachable
  std::uint32_t pending = 0;  // not yet finished (pending or in progress)
  // True when the only failed host so far is the last one in target order
  // (OneAtATime's special case).
  bool only_last_failed = false;
};
enum class verdict { running, succeeded, failed };
// Decides the deployment's outcome from host results: failed as soon as the
// minimum can no longer be met (too few hosts left to succeed, or failed
// hosts holding all K out-of-service slots while hosts are still pending);
// succeeded when nothing is pending and the minimum (and at least one
// success) is met.
verdict decide(const deployment_config& c, const host_tally& t);

}  // namespace meshdeploy::deploy

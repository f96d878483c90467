#include "node/deploy/deployment_config.h"

#include "node/deploy/errc.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace meshdeploy::deploy {
namespace {

constexpr std::string_view kPrefix = "CodeDeployDefault.";

}  // namespace

std::string_view to_string(min_healthy_type t) {
  switch (t) {
    case min_healthy_type::host_count:
      return "HOST_COUNT";
    case min_healthy_type::fleet_percent:
      return "FLEET_PERCENT";
    case min_healthy_type::one_at_a_time:
      return "ONE_AT_A_TIME";
  }
  return "HOST_COUNT";
}

const std::vector<deployment_config>& builtin_configs() {
  static const std::vector<deployment_config> configs = {
      {"OneAtATime", min_healthy_type::one_at_a_time, 0, true},
      {"HalfAtATime", min_healthy_type::fleet_percent, 50, true},
      {"AllAtOnce", min_healthy_type::host_count, 0, true},
  };
  return configs;
}

std::string canonical_config_name(std::string_view name) {
  if (name.starts_with(kPrefix)) name.remove_prefix(kPrefix.size());
  return std::string(name);
}

std::optional<deployment_config> find_builtin_config(std::string_view name) {
  const std::string canonical = canonical_config_name(name);
  for (const auto& c : builtin_configs()) {
    if (c.name == canonical) return c;
  }
  return std::nullopt;
}

result<void> validate_custom_config_name(std::string_view name) {
  if (name.empty() || name.size() > 100) {
    return make_error(errc::invalid_argument,
                      fmt::format("config name '{}' must be 1 to 100 characters", name));
  }
  for (char ch : name) {
    const bool good = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
    if (!good) {
      return make_error(errc::invalid_argument,
                        fmt::format("config name '{}' may only contain letters, digits, '.', '_' "
                                    "and '-'",
                                    name));
    }
  }
  if (name.starts_with(kPrefix) || find_builtin_config(name)) {
    return make_error(
        errc::invalid_argument,
        fmt::format("config name '{}' is reserved for a built-in configuration", name));
  }
  return ok();
}

result<deployment_config> parse_min_healthy(std::string_view name, std::string_view text) {
  deployment_config c;
  c.name = std::string(name);
  std::string_view digits = text;
  if (digits.ends_with('%')) {
    c.type = min_healthy_type::fleet_percent;
    digits.remove_suffix(1);
  }
  std::uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size() ||
      (c.type == min_healthy_type::fleet_percent && v > 99)) {
    return make_error(
        errc::invalid_argument,
        fmt::format("--min-healthy '{}' is not valid: give a host count such as 2, or "
                    "a fleet percent from 0% to 99% such as 75%",
                    text));
  }
  c.value = v;
  return c;
}

std::uint32_t min_healthy_hosts(const deployment_config& c, std::uint32_t n) {
  switch (c.type) {
    case min_healthy_type::one_at_a_time:
      return n > 0 ? n - 1 : 0;
    case min_healthy_type::host_count:
      return c.value;
    case min_healthy_type::fleet_percent:
      return static_cast<std::uint32_t>((static_cast<std::uint64_t>(n) * c.value + 99) / 100);
  }
  return 0;
}

result<void> check_health_constraints(const deployment_config& c, std::uint32_t n) {
  if (c.builtin || n == 0) return ok();
  const std::uint32_t h = min_healthy_hosts(c, n);
  if (h >= n) {
    return make_error(
        errc::invalid_argument,
        fmt::format("deployment config '{}' needs {} healthy host(s) but the group has "
                    "only {} target(s), so no host could ever be updated "
                    "(CodeDeploy: HEALTH_CONSTRAINTS_INVALID); lower the minimum or "
                    "use another config",
                    c.name, h, n));
  }
  return ok();
}

std::uint32_t max_out_of_service(const deployment_config& c, std::uint32_t n) {
  if (n == 0) return 1;
  if (c.type == min_healthy_type::one_at_a_time) return 1;
  const std::uint32_t h = std::min(min_healthy_hosts(c, n), n);
  return std::clamp<std::uint32_t>(n - h, 1, n);
}

verdict decide(const deployment_config& c, const host_tally& t) {
  if (t.targets == 0) return verdict::failed;
  if (c.type == min_healthy_type::one_at_a_time) {
    // CodeDeploy: every host must succeed, except that a failure of only the
    // last host still lets the deployment succeed (if any host succeeded).
    if (t.failed > 0 && !(t.failed == 1 && t.only_last_failed)) return verdict::failed;
    if (t.pending > 0) return verdict::running;
    return t.succeeded >= 1 ? verdict::succeeded : verdict::failed;
  }
  // At least one host must succeed whatever the config says.
  const std::uint32_t needed =
      std::max<std::uint32_t>(1, std::min(min_healthy_hosts(c, t.targets), t.targets));
  if (t.succeeded + t.pending < needed) return verdict::failed;
  // Failed hosts stay out of service (they keep their rollout tokens): once
  // they fill all K slots, no further host may start, so the minimum can no
  // longer be met (CodeDeploy: 10 hosts at 85% fail on the first failure).
  if (t.pending > 0 && t.failed >= max_out_of_service(c, t.targets)) return verdict::failed;
  if (t.pending > 0) return verdict::running;
  return t.succeeded >= needed ? verdict::succeeded : verdict::failed;
}

}  // namespace meshdeploy::deploy

// CodeDeploy's lifecycle events for EC2/on-premises in-place deployments, in
// the order CodeDeploy runs them. The numbering is that order and is stored
// (journal, status records): values are never renumbered or reused.
//
// Thread safety: everything here is a pure function over constant tables.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace meshdeploy::agent {

enum class lifecycle_event : std::uint8_t {
  before_block_traffic = 0,
  block_traffic = 1,
  after_block_traffic = 2,
  application_stop = 3,
  download_bundle = 4,
  before_install = 5,
  install = 6,
  after_install = 7,
  application_start = 8,
  validate_service = 9,
  before_allow_traffic = 10,
  allow_traffic = 11,
  after_allow_traffic = 12,
};

// All 13 events in execution order (BeforeBlockTraffic first, AfterAllowTraffic
// last). The span refers to a static table and never dangles.
std::span<const lifecycle_event> lifecycle_order();

// CodeDeploy's name of `e` ("ApplicationStop", "BeforeInstall", ...). The view
// refers to a static string. An out-of-range value yields "Unknown".
std::string_view to_string(lifecycle_event e);

// The event named `name`, compared exactly as CodeDeploy does (case-sensitive,
// no surrounding spaces): "AfterInstall" -> after_install, "afterinstall" ->
// nullopt.
std::optional<lifecycle_event> parse_lifecycle_event(std::string_view name);

// True for the events the agent performs itself and that take no user hooks:
// BlockTraffic, DownloadBundle, Install, AllowTraffic.
bool is_reserved(lifecycle_event e);

// True for the events whose hooks come from the last revision that succeeded
// on this host for the deployment group (not from the revision being
// deployed): ApplicationStop, BeforeBlockTraffic, AfterBlockTraffic.
bool runs_previous_revision(lifecycle_event e);

}  // namespace meshdeploy::agent

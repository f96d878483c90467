#include "node/agent/lifecycle_event.h"

#include <array>
#include <cstddef>

namespace meshdeploy::agent {
namespace {

struct event_info {
  lifecycle_event event;
  std::string_view name;
};

// Indexed by the enum's value, which is also the execution order.
constexpr std::array<event_info, 13> events{{
    {lifecycle_event::before_block_traffic, "BeforeBlockTraffic"},
    {lifecycle_event::block_traffic, "BlockTraffic"},
    {lifecycle_event::after_block_traffic, "AfterBlockTraffic"},
    {lifecycle_event::application_stop, "ApplicationStop"},
    {lifecycle_event::download_bundle, "DownloadBundle"},
    {lifecycle_event::before_install, "BeforeInstall"},
    {lifecycle_event::install, "Install"},
    {lifecycle_event::after_install, "AfterInstall"},
    {lifecycle_event::application_start, "ApplicationStart"},
    {lifecycle_event::validate_service, "ValidateService"},
    {lifecycle_event::before_allow_traffic, "BeforeAllowTraffic"},
    {lifecycle_event::allow_traffic, "AllowTraffic"},
    {lifecycle_event::after_allow_traffic, "AfterAllowTraffic"},
}};

constexpr bool table_is_in_enum_order() {
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (static_cast<std::size_t>(events[i].event) != i) return false;
  }
  return true;
}
static_assert(table_is_in_enum_order(), "events[] must be indexed by the enum value");

constexpr std::array<lifecycle_event, events.size()> make_order() {
  std::array<lifecycle_event, events.size()> order{};
  for (std::size_t i = 0; i < events.size(); ++i) order[i] = events[i].event;
  return order;
}
constexpr std::array<lifecycle_event, events.size()> order = make_order();

}  // namespace

std::span<const lifecycle_event> lifecycle_order() { return order; }

std::string_view to_string(lifecycle_event e) {
  const auto i = static_cast<std::size_t>(e);
  return i < events.size() ? events[i].name : std::string_view("Unknown");
}

std::optional<lifecycle_event> parse_lifecycle_event(std::string_view name) {
  for (const event_info& info : events) {
    if (info.name == name) return info.event;
  }
  return std::nullopt;
}

bool is_reserved(lifecycle_event e) {
  switch (e) {
    case lifecycle_event::block_traffic:
    case lifecycle_event::download_bundle:
    case lifecycle_event::install:
    case lifecycle_event::allow_traffic:
      return true;
    default:
      return false;
  }
}

bool runs_previous_revision(lifecycle_event e) {
  switch (e) {
    case lifecycle_event::application_stop:
    case lifecycle_event::before_block_traffic:
    case lifecycle_event::after_block_traffic:
      return true;
    default:
      return false;
  }
}

}  // namespace meshdeploy::agent

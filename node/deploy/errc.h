// Error codes of node/deploy (deployments, configurations, the node's registry).
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace meshdeploy::deploy {

enum class errc : int {
  ok = 0,
  invalid_argument = 1,  // a request field is missing or malformed (message names it)
  not_found = 2,         // application, group, config, revision or deployment unknown
  already_exists = 3,    // create of something that exists
  conflict = 4,          // e.g. the group already has an active deployment
  no_targets = 5,        // the group's selector matches no live host
  internal = 6,          // storage or filesystem failure (message has the detail)
  unavailable = 7,       // another host needed for the answer is dead, left or overloaded
  timed_out = 8,         // another host needed for the answer did not answer in time
};

const boost::system::error_category& deploy_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), deploy_category()};
}

}  // namespace meshdeploy::deploy

namespace boost::system {
template <>
struct is_error_code_enum<meshdeploy::deploy::errc> : std::true_type {};
}  // namespace boost::system

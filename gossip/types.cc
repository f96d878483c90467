#include "gossip/types.h"

namespace meshdeploy::gossip {

std::string_view to_string(member_state s) {
  switch (s) {
    case member_state::alive:
      return "alive";
    case member_state::suspect:
      return "suspect";
    case member_state::dead:
      return "dead";
    case member_state::left:
      return "left";
  }
  return "unknown";
}

std::string_view to_string(member_event::kind k) {
  switch (k) {
    case member_event::kind::join:
      return "join";
    case member_event::kind::leave:
      return "leave";
    case member_event::kind::fail:
      return "fail";
    case member_event::kind::update:
      return "update";
  }
  return "unknown";
}

}  // namespace meshdeploy::gossip

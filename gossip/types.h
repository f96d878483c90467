// Value types of the gossip layer: node identity and metadata, member states,
// incarnation numbers and membership events.
#pragma once

#include "gossip/transport.h"

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace meshdeploy::gossip {

// A node's incarnation number: only the node itself raises it (to refute a
// suspicion or to announce new metadata); a higher incarnation overrides any
// older claim about the node. A strong type so it cannot be mixed up with
// sequence numbers or counts.
class incarnation {
 public:
  constexpr incarnation() = default;
  constexpr explicit incarnation(std::uint64_t v) : v_(v) {}
  [[nodiscard]] constexpr std::uint64_t value() const { return v_; }
  [[nodiscard]] constexpr incarnation next() const { return incarnation(v_ + 1); }
  friend constexpr auto operator<=>(incarnation, incarnation) = default;

 private:
  std::uint64_t v_ = 0;
};

// Wire values (gossip/messages.h): numbered explicitly, only appended to.
enum class member_state : std::uint8_t { alive = 0, suspect = 1, dead = 2, left = 3 };

// "alive", "suspect", "dead", "left".
std::string_view to_string(member_state s);

// What a node announces about itself.
struct node_meta {
  std::string name;                         // unique in the cluster, 1..max_name_bytes
  address addr;                             // where it receives packets and streams
  std::map<std::string, std::string> tags;  // sorted, e.g. role=web
  std::uint8_t protocol_min = 1;            // wire protocol versions it speaks
  std::uint8_t protocol_max = 1;

  friend bool operator==(const node_meta&, const node_meta&) = default;
};

// One member as this node currently sees it (a snapshot).
struct member {
  node_meta meta;
  incarnation inc;
  member_state state = member_state::alive;

  friend bool operator==(const member&, const member&) = default;
};

// Delivered to membership's event handler when the local view changes.
struct member_event {
  enum class kind : std::uint8_t {
    join,    // a member became known, or came back after dead/left
    leave,   // a member left gracefully
    fail,    // a member was declared dead
    update,  // a live member's metadata (tags, address, versions) changed
  };
  kind type = kind::join;
  member who;
};

// "join", "leave", "fail", "update".
std::string_view to_string(member_event::kind k);

}  // namespace meshdeploy::gossip

// Diagnosis hook of the membership core: the steps of suspicion handling, reported as they
// happen so that a simulator (tests/sim/simulator.h) can reconstruct why a healthy member was
// declared dead. Nothing here changes behaviour; with no handler set the cost is one branch per
// step.
#pragma once

#include "gossip/config.h"
#include "gossip/types.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

namespace meshdeploy::gossip {

struct trace_event {
  enum class kind : std::uint8_t {
    suspected,      // we started suspecting `subject`; `from` is the accuser we credit
    confirmed,      // `from` counted as a new independent confirmation; deadline moved earlier
    cleared,        // an alive at a higher incarnation (`inc`) ended our suspicion
    stale_alive,    // an alive at or below our incarnation arrived while we suspected (ignored)
    declared_dead,  // our suspicion timer ran out
    dead_received,  // a dead message ended our suspicion (someone else's timer ran out)
    refuted,        // `subject` is us: we raised our incarnation to `inc` and queued an alive
    self_suspect_ignored,  // `subject` is us: a suspicion of an incarnation we already refuted
    heard_alive,  // an alive message about `subject` at `inc` arrived (before it is handled)
  };
  // How the suspicion information arrived (meaningful for suspected and confirmed).
  enum class source : std::uint8_t {
    probe,      // our own probe of the subject failed
    message,    // a suspect message (gossip or piggyback)
    push_pull,  // a state exchange listed the subject as suspect or dead
    none,
  };
  kind k = kind::suspected;
  source via = source::none;
  std::string_view subject;
  std::string_view from;  // accuser or confirmer; empty when not applicable
  incarnation inc;
  time_point deadline{};          // suspected, confirmed, declared_dead: the suspicion deadline
  std::size_t confirmations = 0;  // suspected, confirmed, declared_dead
  std::size_t queue_depth = 0;    // refuted: our broadcast queue after queuing the alive
};

using trace_handler = std::function<void(const trace_event&)>;

}  // namespace meshdeploy::gossip

// Front header of the gossip library: the sans-IO SWIM + Lifeguard membership
// core and its value types. Other folders include this (or the individual
// headers it lists); see docs/gossip.md and docs/wire-format.md.
#pragma once

#include "gossip/codec.h"       // IWYU pragma: export
#include "gossip/config.h"      // IWYU pragma: export
#include "gossip/membership.h"  // IWYU pragma: export
#include "gossip/messages.h"    // IWYU pragma: export
#include "gossip/metrics.h"     // IWYU pragma: export
#include "gossip/transport.h"   // IWYU pragma: export
#include "gossip/types.h"       // IWYU pragma: export

#include "gossip/config.h"

namespace meshdeploy::gossip {

using namespace std::chrono_literals;

config config::lan() {
  config c;
  c.probe_interval = 500ms;
  c.probe_timeout = 200ms;
  c.indirect_checks = 3;
  c.suspicion_mult = 3;
  c.suspicion_max_mult = 6;
  c.awareness_max_multiplier = 8;
  c.retransmit_mult = 4;
  c.gossip_interval = 200ms;
  c.gossip_nodes = 3;
  c.gossip_to_dead = 30s;
  c.push_pull_interval = 15s;
  c.dead_reap_after = 60s;
  c.left_reap_after = 60s;
  return c;
}

config config::local() {
  config c = lan();  // same probe interval, timeout and suspicion multiplier
  c.indirect_checks = 1;
  c.gossip_interval = 100ms;
  c.gossip_to_dead = 15s;
  c.push_pull_interval = 3s;
  c.dead_reap_after = 30s;
  c.left_reap_after = 30s;
  return c;
}

}  // namespace meshdeploy::gossip

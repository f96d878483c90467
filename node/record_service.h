// The node's share of the replicated record set (DESIGN.md §4): the verified
// store, the replicator that spreads and repairs it over the gossip layer's
// direct messages, the checks on records operators submit through this node's
// API, and the audit chain every accepted operator record is appended to.
//
// Thread safety: every public method may be called from any thread (one mutex
// around the sans-IO replicator). `send` is called with that mutex held and
// must not call back in: the node posts it to its io thread.
#pragma once

#include "node/records/payloads.h"
#include "node/records/record.h"
#include "node/records/replicator.h"
#include "node/records/store.h"
#include "node/security/audit.h"
#include "node/security/identity.h"
#include "storage/result.h"

#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace meshdeploy::node {

struct record_service_options {
  records::public_key admin{};  // the cluster admin's key: grants must carry its signature
  std::string node_name;        // this node, for the audit chain
  records::replicator_config replication;
  // When set, records from peers are forwarded once per burst (replicator_config
  // batch_forwarding): `defer` must run the function it gets later on the thread that delivers
  // messages, after the work already queued there (the node: boost::asio::post on its io
  // thread), and never after the service is destroyed.
  std::function<void(std::function<void()>)> defer;
};

class record_service {
 public:
  using peers_fn = std::function<std::vector<std::string>()>;
  using send_fn = std::function<void(const std::string& peer, std::vector<std::byte> bytes)>;

  // Everything is borrowed and must outlive the service. `self` signs this node's own records.
  record_service(records::store& st, security::audit_log& audit, const security::identity& self,
                 record_service_options options, peers_fn peers, send_fn send);

  // The checks on a record an operator submits through this node's API
  // (security::check_submission: signature, the writer's newest grant, freshness, schema).
  result<records::payload> check(const records::record& r) const;

  // Stores and spreads a checked record; true when it was new to this node.
  result<bool> publish(const records::record& r);

  // Signs `p` with this node's key and publishes it: as `version` when given (the rollout
  // driver numbers a host's progress itself so a replay yields the same versions), else one
  // above the stored version (read and written under one lock, so concurrent callers get
  // distinct versions in call order). `durable` false skips the sync (intermediate progress:
  // the next record supersedes it).
  result<bool> publish_own(const records::payload& p, bool durable = true,
                           std::uint64_t version = 0);

  // Replication traffic from a peer (gossip direct messages of the records type).
  void on_message(const std::string& from, std::span<const std::byte> bytes);
  // Anti-entropy; call at next_deadline().
  void on_tick();
  records::time_point next_deadline() const;

  // Called for every record newly stored (from the API or a peer), after the audit append.
  void set_on_stored(std::function<void(const records::record&)> fn);

  // True once an anti-entropy digest from a peer equalled this node's root since start: this
  // node then held every record that peer held (a fresh node has caught up with the mesh).
  bool matched_a_peer() const;

  // Prometheus text: records stored by type, rejected by reason, pending, traffic.
  std::string prometheus_text() const;

 private:
  void stored(const records::record& r);
  // With options_.defer: schedules one flush_forwarding for what is waiting. Requires mu_.
  void schedule_forwarding();

  records::store& store_;
  security::audit_log& audit_;
  const security::identity& self_;
  record_service_options options_;
  mutable std::mutex mu_;
  records::replicator replicator_;     // GUARDED_BY(mu_)
  bool forwarding_scheduled_ = false;  // GUARDED_BY(mu_)
  std::function<void(const records::record&)> on_stored_;
};

}  // namespace meshdeploy::node

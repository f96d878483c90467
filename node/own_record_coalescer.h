// Coalesces this node's intermediate records before they are signed and spread. A host in a
// deployment publishes a progress record every time a lifecycle event finishes (13 events, many
// of them instant), each superseding the last; every one costs a signature, a store write, a push
// to several peers and a status recomputation on every node. Intermediate (non-durable) records
// are therefore held for a short delay per key, a newer one for the same key replacing the held
// one, and a durable record for the key (entered, resolved, failed, approvals) drops the held one,
// which it supersedes, and goes out at once. bench/RESULTS.md has the effect.
//
// Threading: publish() may be called from any thread (deployment workers); the deferred flushes
// run wherever `defer` runs them (the node's io thread). Calls of the wrapped `publish` are
// serialized, and ordered: a held record is published before a later durable record for its key
// or not at all.
#pragma once

#include "node/records/payloads.h"
#include "storage/result.h"

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace meshdeploy::node {

class own_record_coalescer {
 public:
  // Signs, stores and spreads a record (record_service::publish_own).
  // `version` 0: the stored version + 1.
  using publish_fn =
      std::function<result<bool>(const records::payload&, bool durable, std::uint64_t version)>;
  // Runs `fn` once, `delay` from now (the node: a steady_timer on its io_context).
  using defer_fn = std::function<void(std::chrono::milliseconds delay, std::function<void()> fn)>;

  // `delay` zero disables coalescing (every record goes out at once). The coalescer must
  // outlive every function handed to `defer` that has not run yet, or `defer` must drop them.
  own_record_coalescer(publish_fn publish, defer_fn defer, std::chrono::milliseconds delay);
  own_record_coalescer(const own_record_coalescer&) = delete;
  own_record_coalescer& operator=(const own_record_coalescer&) = delete;

  // Durable: drops a held record with the same type and key, then publishes `p` now and returns
  // its result. Not durable: holds `p` (replacing a held one for the same key) and returns true;
  // it is published within `delay` unless superseded, and a failure then is logged.
  // `version` is passed through (0: the stored version + 1).
  result<bool> publish(const records::payload& p, bool durable, std::uint64_t version = 0);

  // Records held and records replaced or dropped before they went out (for tests and metrics).
  [[nodiscard]] std::size_t held() const;
  [[nodiscard]] std::uint64_t coalesced() const;

 private:
  void flush(const std::string& key);

  publish_fn publish_;
  defer_fn defer_;
  std::chrono::milliseconds delay_;
  // Held across taking a record and publishing it, so a held record never goes out after a
  // durable one that superseded it (the io thread may wait here for a worker's synced write).
  std::mutex publish_mu_;
  mutable std::mutex mu_;
  // GUARDED_BY(mu_), by type/key: the record and its version
  std::map<std::string, std::pair<records::payload, std::uint64_t>> held_;
  std::uint64_t coalesced_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace meshdeploy::node

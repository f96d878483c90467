// Where a host keeps its rollout journal (rollout::host_journal: its approvals, the intents it
// approved, the deployments it entered and the final record of each) between runs: one JSON
// document per deployment group in the RocksDB column family "rollout_journal" of the node's
// database, written synced when the driver asks for it (docs/rollout.md "Journal").
//
// Deviation from the simulator's model: the real journal lives in the data dir, so wiping the
// data dir loses it with the records; the driver then rebuilds its own finals and approvals from
// the records peers send back (host_driver::step), and the window between signing an approval and
// it reaching a peer is the only state that can be lost.
//
// Thread safety: as storage::db (any thread); one group's journal is written from one thread.
#pragma once

#include "node/deploy/rollout/host_driver.h"
#include "storage/db.h"
#include "storage/result.h"

#include <string>

namespace meshdeploy::deploy {

class journal_store {
 public:
  static constexpr const char* column_family = "rollout_journal";

  // `db` must outlive this object and have the column family above.
  explicit journal_store(storage::db& db) : db_(db) {}

  // The journal of APP/GROUP, empty when none was written. Errors: internal (storage), or
  // invalid_argument naming the group when the stored document does not decode.
  result<rollout::host_journal> load(const std::string& app, const std::string& group) const;
  // Writes it; `synced` fsyncs the WAL before returning.
  result<void> save(const std::string& app, const std::string& group,
                    const rollout::host_journal& j, bool synced);

 private:
  storage::db& db_;
};

// The JSON encoding (exposed for tests). Payloads are kept as hex of their record encoding.
std::string encode_journal(const rollout::host_journal& j);
result<rollout::host_journal> decode_journal(std::string_view text);

}  // namespace meshdeploy::deploy

// The agent's durable journal: one entry per deployment this host executes,
// rewritten (synced) at every step that matters for crash recovery. It is the
// answer to "what was this host doing when it died?". See docs/agent.md
// "Crash recovery".
//
// Thread safety: safe to call from several threads for different deployments
// (RocksDB is thread-safe; one deployment has one writer).
#pragma once

#include "storage/db.h"
#include "storage/result.h"

#include <optional>
#include <string>
#include <vector>

namespace meshdeploy::agent {

enum class journal_phase {
  prepared,  // bundle verified and extracted; nothing on the host changed yet
  entered,   // inside the update window: scripts or install may have run
  finished,  // a final status was recorded
};

struct journal_entry {
  std::string deployment_id;
  std::string group_id;
  journal_phase phase = journal_phase::prepared;
  std::string event;       // lifecycle event in progress or last started ("" before any)
  std::string script;      // script running within `event` ("" between scripts)
  std::string hook_token;  // MESHDEPLOY_HOOK_TOKEN of the running script, for cleanup
  std::string result;      // with phase finished: the host status ("Succeeded", "Failed")
};

class journal {
 public:
  static constexpr const char* column_family = "journal";

  // `db` must outlive the journal and have the "journal" column family.
  explicit journal(storage::db& db) : db_(db) {}

  // Writes the entry, with an fsync before returning unless `durability` is buffered (then a
  // crash may lose it, but not the synced entries before it, and the next synced write makes
  // it durable too: one write-ahead log).
  result<void> record(const journal_entry& e,
                      storage::durability durability = storage::durability::synced);
  result<std::optional<journal_entry>> get(const std::string& deployment_id) const;
  // Entries whose phase is not finished: what a crash interrupted.
  result<std::vector<journal_entry>> unfinished() const;
  // Drops the entry (retention).
  result<void> forget(const std::string& deployment_id);

 private:
  storage::db& db_;
};

std::string_view to_string(journal_phase p);

}  // namespace meshdeploy::agent

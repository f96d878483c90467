// What this host remembers about each deployment group it deployed: the last
// revision that succeeded (whose ApplicationStop scripts run next time), the
// files the last deployment installed (removed first next time), and the
// recent deployments whose archives and logs are kept on disk.
//
// Thread safety: safe from several threads for different groups; one group
// has at most one deployment running on a host.
#pragma once

#include "node/agent/installer.h"
#include "storage/db.h"
#include "storage/result.h"

#include <optional>
#include <string>
#include <vector>

namespace meshdeploy::agent {

struct group_host_state {
  std::string group_id;
  std::string last_successful_deployment;  // "" before the first success
  std::string last_successful_revision;
  std::string last_deployment;       // most recent deployment started here
  bool last_failed = false;          // did the most recent deployment fail here?
  install_manifest installed;        // what the most recent Install created
  std::vector<std::string> history;  // deployment ids, oldest first (for retention)
};

class host_state_store {
 public:
  static constexpr const char* column_family = "host_groups";

  // `db` must outlive this object and have the "host_groups" column family.
  explicit host_state_store(storage::db& db) : db_(db) {}

  // The group's state, or a fresh one (group_id set, everything else empty).
  result<group_host_state> load(const std::string& group_id) const;
  // Writes the state with an fsync before returning.
  result<void> save(const group_host_state& s);

 private:
  storage::db& db_;
};

}  // namespace meshdeploy::agent

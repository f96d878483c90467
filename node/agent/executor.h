// Runs one deployment's lifecycle on this host, CodeDeploy-style, whatever
// brought the deployment here (the API today, the mesh later). Also recovers
// from a crash: deployments the journal shows as unfinished are failed
// honestly and their leftover hook processes are killed.
//
// Layout under <data-dir>/deployments/<group-id>/<deployment-id>/:
//   deployment-archive/   the extracted revision (kept while it is the last success)
//   logs/scripts.log      every script's output, with CodeDeploy-style markers
//
// Thread safety: `run` blocks and is meant for a worker thread (never the
// network thread). Runs of different groups may proceed concurrently; the
// caller guarantees at most one run per group at a time.
#pragma once

#include "node/agent/appspec.h"
#include "node/agent/archive.h"
#include "node/agent/host_state.h"
#include "node/agent/journal.h"
#include "node/agent/lifecycle_event.h"
#include "node/deploy/status.h"
#include "storage/db.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace meshdeploy::agent {

// Everything the agent needs to know about a deployment.
struct local_deployment {
  std::string deployment_id;
  std::string application;
  std::string group;
  std::string group_id;
  std::string revision_id;       // BLAKE2b-256 hex of the bundle
  std::filesystem::path bundle;  // the bundle file; verified against revision_id
  std::optional<file_exists_behavior> file_exists_override;
  bool ignore_stop_failures = false;
};

struct agent_options {
  std::filesystem::path data_dir;            // <data-dir>
  std::filesystem::path install_root = "/";  // prefixes every appspec destination
  extract_limits limits;
  std::size_t keep_deployments = 5;  // per group, besides the last successful one
  std::chrono::milliseconds kill_grace{5000};
};

// Receives progress. Called on the thread running the deployment.
class progress_sink {
 public:
  virtual ~progress_sink() = default;
  virtual void event_started(lifecycle_event e, deploy::unix_ms at) = 0;
  virtual void event_finished(lifecycle_event e, deploy::host_status s,
                              const std::optional<deploy::diagnostics>& diag,
                              deploy::unix_ms at) = 0;
};

struct run_result {
  deploy::host_status status = deploy::host_status::failed;
  std::string message;  // why it failed ("" on success)
};

// A deployment the journal shows was cut short by a crash.
struct interrupted_run {
  std::string deployment_id;
  std::string group_id;
  bool entered = false;  // did it pass the point where the host changes?
  std::string event;     // event running at the crash ("" if between events)
  std::string script;
  std::string message;  // the honest account that goes into the status
};

class executor {
 public:
  // `db` must outlive the executor and have the journal and host_groups
  // column families.
  executor(storage::db& db, agent_options options);

  // Runs the deployment to completion (or until `stop` becomes true: no
  // further script starts). Never throws; every failure is reported through
  // `sink` and the returned status.
  run_result run(const local_deployment& d, progress_sink& sink, const std::atomic<bool>& stop);

  // Called once at start-up, before any run: kills leftover processes of
  // interrupted hooks, marks their journal entries finished (Failed) and
  // returns them so the caller records the host's status. Never reruns a hook.
  result<std::vector<interrupted_run>> recover();

  // Where a deployment's log and archive live.
  std::filesystem::path deployment_dir(const std::string& group_id,
                                       const std::string& deployment_id) const;
  std::filesystem::path log_file(const std::string& group_id,
                                 const std::string& deployment_id) const;

  const agent_options& options() const { return options_; }
  host_state_store& host_state() { return state_; }
  const journal& run_journal() const { return journal_; }

 private:
  struct run_context;
  bool run_event(run_context& ctx, lifecycle_event e);
  void prune(group_host_state& s);

  storage::db& db_;
  agent_options options_;
  journal journal_;
  host_state_store state_;
};

// Returns the lines of `log` that belong to lifecycle event `event` (the
// section after its "LifecycleEvent - <event>" marker), each ending with a line
// break, or the whole log when `event` is empty.
std::string filter_log(std::string_view log, std::string_view event);

// filter_log one line at a time, for logs read in pieces: keep(line) (without its
// line break) says whether the line belongs to `event`'s section; an empty
// `event` keeps everything.
class log_section_filter {
 public:
  // Marker lines are shorter than this; a longer line may be judged by its start.
  static constexpr std::size_t max_marker_bytes = 1024;
  explicit log_section_filter(std::string_view event) : event_(event) {}
  bool keep(std::string_view line);

 private:
  std::string event_;
  bool inside_ = false;
};

}  // namespace meshdeploy::agent

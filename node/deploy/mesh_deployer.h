// Deployments across the mesh, on one node (DESIGN.md §5, docs/rollout.md): the IO shell around
// the sans-IO rollout core (node/deploy/rollout/).
//
// For every deployment group it holds intents of, the node keeps one rollout::host_driver (this
// host's part: admission votes, the gate, the journal) fed with the group's verified records
// from the record store, and performs the driver's actions in order: journal writes (synced
// when asked, before anything that follows), signed approvals and progress, bundle prefetch as
// soon as an intent names this host, lifecycle runs with the agent's executor on a worker
// thread, stop requests. It also keeps every deployment's status document (rollout::view, the
// same pure function on every node) in the registry, so the API's status, list and long-poll
// routes serve it. Beyond the driver it writes the records the group asks nodes to write:
// an automatic rollback of a failed deployment when the group has auto-rollback on (only the
// failed deployment's admission committee writes it, under one deterministic id), and a
// catch-up deployment of the group's last successful revision to this host alone when it
// matches a group it has not got that revision for (CodeDeploy's Auto Scaling behaviour).
//
// Thread safety: every public method runs on the node's io thread; workers run executor.run on
// their own threads and only post back to it.
#pragma once

#include "node/agent/executor.h"
#include "node/deploy/journal_store.h"
#include "node/deploy/registry.h"
#include "node/deploy/rollout/host_driver.h"
#include "node/deploy/rollout/planning.h"
#include "node/records/payloads.h"
#include "node/records/record.h"
#include "node/records/store.h"
#include "storage/result.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace meshdeploy::deploy {

struct mesh_env {
  // Signs a payload with this node's key and publishes it (record_service::publish_own);
  // `durable` false for intermediate progress; `version` 0 = the stored version + 1.
  std::function<result<bool>(const records::payload&, bool durable, std::uint64_t version)> publish;
  // Called on the io thread after a deployment's status document changed.
  std::function<void(const std::string& deployment_id)> changed;
  // Fetches a revision's bundle from other nodes (node/swarm); `progress(held, size)` runs on
  // the io thread as pieces arrive, `done` once with the verified file (the deployer moves it
  // into the registry) or an error.
  std::function<void(const records::revision_payload&,
                     std::function<void(std::uint64_t held, std::uint64_t size)> progress,
                     std::function<void(result<std::filesystem::path>)> done)>
      fetch_bundle;
  // Runs `fn` on the io thread (asio::post).
  std::function<void(std::function<void()> fn)> post;
  // True once this node's records matched a peer's since start (record_service::
  // matched_a_peer); unset = never (catch-up then waits for catch_up_delay).
  std::function<bool()> records_in_sync;
};

struct mesh_options {
  // A target waiting at the gate that sees no progress in the deployment for this long ends
  // its part as skipped (DEPLOYMENT_TIMED_OUT), which fails the deployment; no token is freed.
  // 0 disables. Default: longer than the longest hook (3600 s) plus margin.
  std::chrono::milliseconds progress_deadline{std::chrono::minutes(65)};
  // Catch-up: this host's tags (to match group selectors) and the longest wait after start for
  // the records to arrive before judging what this host lacks (it judges as soon as its records
  // match a peer's: mesh_env::records_in_sync). Disabled when !catch_up.
  bool catch_up = true;
  std::vector<tag> tags;
  std::chrono::milliseconds catch_up_delay{std::chrono::seconds(10)};
  // The node started on an empty data dir with peers to learn from: its drivers enter no
  // deployment until its records match a peer's (mesh_env::records_in_sync) or catch_up_delay
  // passed, so a host whose data dir was wiped mid-hook learns it had entered (its own
  // "entered" record comes back from peers) instead of entering again (host_driver::
  // set_settled; chaos soak seed 21).
  bool empty_data_dir = false;
  // With empty_data_dir: a file that says so across restarts, removed once settled (a node
  // restarted before it settled has a data dir that is no longer empty but still lacks its own
  // records: the rollout simulator, seed 2510, entered twice without it). "" = none.
  std::filesystem::path settling_marker;
};

class mesh_deployer {
 public:
  // Everything is borrowed and must outlive the deployer.
  mesh_deployer(registry& reg, const records::store& store, journal_store& journals,
                agent::executor& exec, std::string self, mesh_options options, mesh_env env);
  ~mesh_deployer();  // stops and joins running workers
  mesh_deployer(const mesh_deployer&) = delete;
  mesh_deployer& operator=(const mesh_deployer&) = delete;

  // Loads every group's records and this host's journals, settles runs a restart cut short
  // (failed, DEPLOYMENT_INTERRUPTED; the interrupted hook is never rerun: `interrupted` comes
  // from agent::executor::recover, which killed its processes), recomputes every status and
  // resumes. Call once, before records flow.
  void start(const std::vector<agent::interrupted_run>& interrupted);

  // Recomputes the status of `deployment_id` now and returns it (the API answers a new intent
  // or stop with it).
  result<deployment_record> refresh_now(const std::string& deployment_id);

  // The targets (in rollout order) and electorate of a new intent `deployment_id` of APP/GROUP
  // over the live `hosts` (rollout::plan_targets over this node's records of the group).
  rollout::target_plan plan(const std::string& app, const std::string& group,
                            std::vector<std::string> hosts, const std::string& deployment_id);

  // A record was stored (new or newer).
  void on_record(const records::record& r);

  // Time: progress deadlines and catch-up. Call about once a second.
  void on_tick();

  // Stops workers: no further script starts. Idempotent.
  void shutdown();

 private:
  struct worker;
  struct group_state;

  group_state* group_for(const std::string& app, const std::string& group, bool create);
  void add_deployment(group_state& g, const records::record& intent);
  bool add_record(group_state& g, const records::record& r);
  void mark_dirty(group_state& g, const std::string& deployment_id);
  void flush_dirty();
  void settle(group_state& g, std::vector<rollout::action> actions);
  bool perform(group_state& g, const rollout::action& a);
  void refresh_views(group_state& g);
  // Recomputes and stores one status document; `follow_link` also rewrites the document of the
  // deployment it rolls back (which names it).
  void write_view(group_state& g, const std::string& deployment_id, bool follow_link = true);
  void maybe_auto_rollback(group_state& g);
  void maybe_catch_up();
  void prefetch(const std::string& app, const std::string& revision,
                std::function<void(result<void>)> done);
  void start_worker(group_state& g, const std::string& deployment_id);
  // A bundle download advanced: hosts in their window waiting for it show it as DownloadBundle
  // InProgress with the bytes held (every 5%).
  void on_download_progress(const std::string& revision, std::uint64_t held, std::uint64_t size);
  void fail_start(group_state& g, const std::string& deployment_id, const std::string& message);

  registry& reg_;
  const records::store& store_;
  journal_store& journals_;
  agent::executor& exec_;
  std::string self_;
  mesh_options options_;
  mesh_env env_;
  std::map<std::string, std::unique_ptr<group_state>> groups_;  // by app/group
  std::map<std::string, group_state*> group_of_;                // deployment id -> its group
  std::map<std::string, std::shared_ptr<worker>> workers_;      // by deployment id
  // revision id -> callbacks waiting for its bundle
  std::map<std::string, std::vector<std::function<void(result<void>)>>> fetching_;
  // Deployments (group key, id) inside their window waiting for a revision's bundle, and the
  // last progress shown for it (percent).
  struct download_wait {
    std::string group, deployment;
    std::int64_t start_ms = 0;
    int shown_percent = -1;
  };
  std::map<std::string, std::vector<download_wait>> waiting_downloads_;
  std::map<std::string, agent::interrupted_run> interrupted_;  // by deployment id
  std::set<std::string> dirty_groups_;
  bool flush_scheduled_ = false;
  std::chrono::steady_clock::time_point started_;
  // True once this node may trust its record set to hold its own records (see
  // mesh_options::empty_data_dir); latched.
  bool records_settled();
  bool settled_ = false;
  std::atomic<bool> shutting_down_{false};
};

// The deployment id an automatic rollback of `failed` gets on every node (so that the
// committee's copies are one record).
std::string auto_rollback_id(const std::string& failed);
// The deployment id of this host's catch-up to `revision` after `after` (last successful one).
std::string catch_up_id(const std::string& host, const std::string& after);
// The creator a node writes into the intents it signs: "host:NAME".
std::string host_creator(const std::string& host);

}  // namespace meshdeploy::deploy

// Deployments across the mesh, on one node (DESIGN.md §5, docs/rollout.md).
//
// Every node keeps, for every deployment intent it holds, the status document
// computed from the signed records (node/deploy/mesh_view.h), stored in the
// registry so the API's status, list and long-poll routes serve it. A node
// that is one of the intent's targets also takes part: it fetches the bundle
// as soon as it sees the intent, waits for the rollout gate, publishes
// `entered` (a synced record) before any destructive step, runs the lifecycle
// with the agent's executor on a worker thread, publishes its per-event
// progress, and resolves only after ValidateService passed (or fails, and
// keeps its token). A stop record ends it: no further script starts, hosts
// that had not entered publish skipped.
//
// Thread safety: on_record, start and the fetch callbacks run on the node's io
// thread; workers run executor.run on their own threads and only publish
// records (record_service is thread-safe) and post back to the io thread.
#pragma once

#include "node/agent/executor.h"
#include "node/deploy/mesh_view.h"
#include "node/deploy/registry.h"
#include "node/records/payloads.h"
#include "node/records/record.h"
#include "node/records/store.h"
#include "storage/result.h"

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace meshdeploy::deploy {

struct mesh_env {
  // Signs a payload with this node's key and publishes it (record_service::publish_own);
  // `durable` false for intermediate progress.
  std::function<result<bool>(const records::payload&, bool durable)> publish;
  // Called on the io thread after a deployment's status document changed.
  std::function<void(const std::string& deployment_id)> changed;
  // Fetches a revision's bundle from other nodes; `done` runs on the io thread with the
  // verified file (the deployer moves it into the registry) or an error.
  std::function<void(const records::revision_payload&,
                     std::function<void(result<std::filesystem::path>)> done)>
      fetch_bundle;
  // Runs `fn` on the io thread (asio::post).
  std::function<void(std::function<void()> fn)> post;
};

class mesh_deployer {
 public:
  // Everything is borrowed and must outlive the deployer.
  mesh_deployer(registry& reg, const records::store& store, agent::executor& exec, std::string self,
                mesh_env env);
  ~mesh_deployer();  // stops and joins running workers
  mesh_deployer(const mesh_deployer&) = delete;
  mesh_deployer& operator=(const mesh_deployer&) = delete;

  // After a restart: a deployment this host had entered but not finished is reported Failed
  // (DEPLOYMENT_INTERRUPTED; the interrupted hook is never rerun: `interrupted` comes from
  // agent::executor::recover, which killed its processes), then every deployment's status is
  // recomputed and this host's part in unfinished ones resumes. Call once, on the io thread,
  // before records flow.
  void start(const std::vector<agent::interrupted_run>& interrupted);

  // Recomputes the status of `deployment_id` now and returns it (the API answers a new intent
  // or stop with it). Call on the io thread.
  result<deployment_record> refresh_now(const std::string& deployment_id);

  // A record was stored (new or newer). Intents, progress, stops and excludes update the
  // deployment they name. Call on the io thread.
  void on_record(const records::record& r);

  // Stops workers: no further script starts. Idempotent.
  void shutdown();

 private:
  struct worker;
  void refresh(const std::string& deployment_id);
  void take_part(const std::string& deployment_id, const deployment_records& d,
                 const deployment_config& config);
  bool bundle_ready(const std::string& deployment_id, const records::intent_payload& in);
  // Signs this host's approval for the group's next deployment when the head is over.
  void approve(const admission& adm, const std::vector<group_intent>& intents,
               const std::string& app, const std::string& group);
  void run_worker(std::shared_ptr<worker> w);
  void publish_progress(const std::string& deployment_id, const std::string& phase,
                        const std::vector<records::event_progress>& events, bool durable = true);
  void flush_dirty();

  registry& reg_;
  const records::store& store_;
  agent::executor& exec_;
  std::string self_;
  mesh_env env_;
  std::map<std::string, std::shared_ptr<worker>> workers_;  // by deployment id
  std::set<std::string> busy_groups_;                       // groups with a running worker
  std::map<std::string, std::set<std::string>> fetching_;   // revision id -> deployments waiting
  std::set<std::string> waiting_for_group_;                 // deployments held by a busy group
  std::set<std::string> skipped_;                           // deployments we published skipped
  std::set<std::string> dirty_;                             // deployments to refresh soon
  bool flush_scheduled_ = false;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace meshdeploy::deploy

// Carries out deployments on this host: the single-host deployment service.
// It resolves a request against the registry, records the deployment, runs
// the agent's executor on a worker thread, and keeps the deployment's status
// document current. The mesh (node/deploy across hosts) replaces the
// submission and status parts; the agent stays as it is.
//
// Thread safety: all public methods are thread-safe. Each running deployment
// has its own worker thread; `on_change` is invoked on that thread.
#pragma once

#include "node/agent/executor.h"
#include "node/deploy/log_text.h"
#include "node/deploy/registry.h"
#include "node/deploy/status.h"
#include "storage/result.h"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace meshdeploy::deploy {

struct deployment_request {
  std::string id;  // "d-XXXXXXXXX" from the signed intent; "" = a new one
  std::string application;
  std::string group;
  std::string revision;              // revision id (must be registered)
  std::string config;                // "" = the group's config
  std::string file_exists_behavior;  // "" = the appspec's; else DISALLOW | OVERWRITE | RETAIN
  bool ignore_stop_failures = false;
  std::string creator = "user";
};

struct host_identity {
  std::string name;
  std::vector<tag> tags;
};

class local_deployer {
 public:
  // `reg` and `exec` must outlive the deployer.
  local_deployer(registry& reg, agent::executor& exec, host_identity self);
  ~local_deployer();  // stops and joins running deployments
  local_deployer(const local_deployer&) = delete;
  local_deployer& operator=(const local_deployer&) = delete;

  // Called with a deployment id after each change of its status document.
  void set_on_change(std::function<void(const std::string&)> fn);

  // Records interrupted deployments honestly after a crash (see
  // agent::executor::recover) and fails deployments this node was running
  // that never reached the journal. Call once, before serving requests.
  result<void> recover();

  // Validates and starts a deployment. Errors: invalid_argument (bad field),
  // not_found (app, group, config, revision), conflict (the group has an
  // active deployment). A group that matches no host yields a deployment
  // that is already Failed (errorInformation NO_INSTANCES), as CodeDeploy does.
  result<deployment_record> submit(const deployment_request& req);

  // Asks a running deployment to stop: no further script starts, the
  // deployment ends Stopped. not_found for unknown ids; a finished deployment
  // is returned unchanged.
  result<deployment_record> stop(const std::string& id);

  // The deployment's script log on `host` ("" = this host), optionally only
  // the section of one lifecycle event; only this host's own log can be read (other hosts' go
  // through deploy::log_service). Errors: not_found (unknown deployment, another host, this
  // host is not among the deployment's targets, no log file: never written or pruned),
  // invalid_argument (`event` is not a lifecycle event name). At most the last `max_bytes`
  // are returned (deploy::read_log_tail: memory stays bounded however long the log).
  // REQUIRES: max_bytes > 0.
  result<log_text> read_log(const std::string& id, const std::string& host,
                            const std::string& event, std::size_t max_bytes) const;

  const host_identity& self() const { return self_; }

  // Stops every running deployment and waits for the workers.
  void shutdown();

 private:
  struct running;
  void run(std::shared_ptr<running> r);
  void publish(running& r);
  struct worker {
    std::shared_ptr<running> state;
    std::thread thread;
  };

  registry& reg_;
  agent::executor& exec_;
  host_identity self_;

  mutable std::mutex mu_;
  std::function<void(const std::string&)> on_change_;       // guarded by mu_
  std::map<std::string, std::shared_ptr<running>> active_;  // by group id, guarded by mu_
  std::vector<worker> workers_;                             // guarded by mu_
  bool shutting_down_ = false;                              // guarded by mu_
};

// "d-" followed by 9 random characters of [A-Z0-9], as CodeDeploy's ids.
std::string new_deployment_id();

}  // namespace meshdeploy::deploy

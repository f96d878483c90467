#include "node/deploy/local_deployer.h"

#include "node/agent/lifecycle_event.h"
#include "node/agent/revision.h"
#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace meshdeploy::deploy {

namespace fs = std::filesystem;

struct local_deployer::running {
  std::mutex mu;
  deployment_record record;  // guarded by mu
  agent::local_deployment job;
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};  // the worker has finished
};

namespace {

// Updates the record's host entry from the executor's callbacks.
class record_sink final : public agent::progress_sink {
 public:
  record_sink(std::function<void(const std::function<void(host_progress&)>&)> update)
      : update_(std::move(update)) {}
  void event_started(agent::lifecycle_event e, unix_ms at) override {
    update_([&](host_progress& h) {
      auto& ev = h.events[static_cast<std::size_t>(e)];
      ev.status = host_status::in_progress;
      ev.start_time = at;
    });
  }
  void event_finished(agent::lifecycle_event e, host_status s,
                      const std::optional<diagnostics>& diag, unix_ms at) override {
    update_([&](host_progress& h) {
      auto& ev = h.events[static_cast<std::size_t>(e)];
      ev.status = s;
      if (ev.start_time == 0 && s != host_status::skipped) ev.start_time = at;
      if (s != host_status::skipped) ev.end_time = at;
      ev.diag = diag;
    });
  }

 private:
  std::function<void(const std::function<void(host_progress&)>&)> update_;
};

}  // namespace

std::string new_deployment_id() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = "d-";
  for (int i = 0; i < 9; ++i) id += kAlphabet[randombytes_uniform(sizeof(kAlphabet) - 1)];
  return id;
}

local_deployer::local_deployer(registry& reg, agent::executor& exec, host_identity self)
    : reg_(reg), exec_(exec), self_(std::move(self)) {}

local_deployer::~local_deployer() { shutdown(); }

void local_deployer::set_on_change(std::function<void(const std::string&)> fn) {
  std::lock_guard lock(mu_);
  on_change_ = std::move(fn);
}

void local_deployer::shutdown() {
  std::vector<worker> workers;
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
    for (auto& [group, r] : active_) r->stop = true;
    workers.swap(workers_);
  }
  for (auto& w : workers) {
    if (w.thread.joinable()) w.thread.join();
  }
}

result<void> local_deployer::recover() {
  MESH_TRY(auto interrupted, exec_.recover());
  std::map<std::string, agent::interrupted_run> by_id;
  for (auto& r : interrupted) by_id.emplace(r.deployment_id, r);

  MESH_TRY(auto all, reg_.list_deployments("", ""));
  for (auto& d : all) {
    if (is_terminal(d.status)) continue;
    // The host finished (journal says so) but the node died before the
    // deployment's own status was written: record the host's real result;
    // events whose end was not recorded become Unknown.
    if (auto j = exec_.run_journal().get(d.id);
        j && j.value() && j.value()->phase == agent::journal_phase::finished &&
        !by_id.count(d.id)) {
      const bool ok_run = j.value()->result == "Succeeded";
      for (auto& h : d.hosts) {
        if (h.host != self_.name) continue;
        h.status = ok_run ? host_status::succeeded : host_status::failed;
        for (auto& ev : h.events) {
          if (!is_terminal(ev.status)) ev.status = host_status::unknown;
        }
      }
      d.status = ok_run ? deployment_status::succeeded : deployment_status::failed;
      d.complete_time = now_ms();
      if (!ok_run) {
        d.error = error_information{
            "HEALTH_CONSTRAINTS",
            fmt::format("host {} failed (recorded before a restart)", self_.name)};
      }
      ++d.version;
      MESH_CHECK(reg_.put_deployment(d));
      continue;
    }
    // This node ran the deployment and died before recording an outcome.
    std::string message = "the node stopped before this deployment finished; redeploy to retry";
    std::string event;
    if (auto it = by_id.find(d.id); it != by_id.end()) {
      message = it->second.message;
      event = it->second.event;
    }
    for (auto& h : d.hosts) {
      if (h.host != self_.name || is_terminal(h.status)) continue;
      h.status = host_status::failed;
      bool failed_one = false;
      for (auto& ev : h.events) {
        if (ev.status == host_status::in_progress || (!failed_one && ev.name == event)) {
          ev.status = host_status::failed;
          ev.end_time = now_ms();
          ev.diag =
              diagnostics{"UnknownError", by_id.count(d.id) ? by_id[d.id].script : "", message, {}};
          failed_one = true;
        } else if (ev.status == host_status::pending) {
          ev.status = host_status::skipped;
        }
      }
    }
    d.status = deployment_status::failed;
    d.complete_time = now_ms();
    d.error = error_information{"DEPLOYMENT_INTERRUPTED", message};
    ++d.version;
    MESH_CHECK(reg_.put_deployment(d));
    spdlog::warn("deployment {} was interrupted by a restart: {}", d.id, message);
  }
  return ok();
}

result<deployment_record> local_deployer::submit(const deployment_request& req) {
  MESH_CHECK(reg_.get_app(req.application));
  MESH_TRY(auto group, reg_.get_group(req.application, req.group));
  MESH_TRY(auto config, reg_.get_config(req.config.empty() ? group.config : req.config));
  if (!agent::is_revision_id(req.revision)) {
    return make_error(errc::invalid_argument,
                      fmt::format("revision '{}' is not a revision id (64 hex characters, as "
                                  "printed by meshdeploy push)",
                                  req.revision));
  }
  MESH_TRY(auto revision, reg_.get_revision(req.application, req.revision));
  std::optional<agent::file_exists_behavior> behavior;
  if (!req.file_exists_behavior.empty()) {
    behavior = agent::parse_file_exists_behavior(req.file_exists_behavior);
    if (!behavior) {
      return make_error(errc::invalid_argument,
                        fmt::format("file exists behavior '{}' is not one of DISALLOW, OVERWRITE, "
                                    "RETAIN",
                                    req.file_exists_behavior));
    }
  }

  deployment_record d;
  d.id = req.id.empty() ? new_deployment_id() : req.id;
  if (auto existing = reg_.get_deployment(d.id)) {
    return make_error(errc::already_exists, fmt::format("deployment {} already exists", d.id));
  }
  d.application = req.application;
  d.group = group.name;
  d.group_id = group.id;
  d.revision = revision.id;
  d.bundle_format = revision.format;
  d.config = config.name;
  d.creator = req.creator;
  d.file_exists_behavior = req.file_exists_behavior;
  d.ignore_stop_failures = req.ignore_stop_failures;
  d.create_time = now_ms();
  d.version = 1;

  // Targets: this host, when the group's tag selector matches it.
  const bool targeted = matches(group.tag_sets, self_.tags);
  if (!targeted) {
    d.status = deployment_status::failed;
    d.complete_time = d.create_time;
    d.error = error_information{
        "NO_INSTANCES",
        fmt::format("no live host matches deployment group '{}' (its tags select hosts this node "
                    "does not match: this node is '{}')",
                    group.name, self_.name)};
    MESH_CHECK(reg_.put_deployment(d));
    return d;
  }
  if (auto h = check_health_constraints(config, 1); !h) {
    d.status = deployment_status::failed;
    d.complete_time = d.create_time;
    d.error = error_information{"HEALTH_CONSTRAINTS_INVALID", h.error().message};
    MESH_CHECK(reg_.put_deployment(d));
    return d;
  }
  d.hosts.push_back(host_progress{self_.name, host_status::pending, pending_lifecycle_events()});
  d.status = deployment_status::in_progress;

  auto r = std::make_shared<running>();
  r->record = d;
  r->job = agent::local_deployment{
      d.id,     d.application,         d.group, d.group_id, d.revision, reg_.bundle_path(revision),
      behavior, d.ignore_stop_failures};
  {
    std::lock_guard lock(mu_);
    if (shutting_down_) {
      return make_error(errc::conflict, "the node is shutting down; submit to another node");
    }
    if (auto it = active_.find(group.id); it != active_.end()) {
      return make_error(errc::conflict,
                        fmt::format("deployment group '{}' already has an active deployment, {}; "
                                    "wait for it or stop it (meshdeploy stop {})",
                                    group.name, it->second->record.id, it->second->record.id));
    }
    MESH_CHECK(reg_.put_deployment(d));
    active_.emplace(group.id, r);
    // Join workers whose deployments are over, so threads do not pile up.
    std::erase_if(workers_, [](worker& w) {
      if (!w.state->done.load()) return false;
      w.thread.join();
      return true;
    });
    workers_.push_back(worker{r, std::thread([this, r] { run(r); })});
  }
  return d;
}

void local_deployer::publish(running& r) {
  deployment_record copy;
  {
    std::lock_guard lock(r.mu);
    ++r.record.version;
    copy = r.record;
  }
  if (auto p = reg_.put_deployment(copy); !p) {
    spdlog::error("cannot record status of {}: {}", copy.id, p.error().message);
  }
  std::function<void(const std::string&)> fn;
  {
    std::lock_guard lock(mu_);
    fn = on_change_;
  }
  if (fn) fn(copy.id);
}

void local_deployer::run(std::shared_ptr<running> r) {
  const std::string id = r->record.id;
  const std::string group_id = r->record.group_id;
  spdlog::info("deployment {} started: {} {} revision {}", id, r->record.application,
               r->record.group, r->record.revision.substr(0, 12));
  {
    std::lock_guard lock(r->mu);
    r->record.hosts[0].status = host_status::in_progress;
  }
  publish(*r);

  record_sink sink([&](const std::function<void(host_progress&)>& change) {
    {
      std::lock_guard lock(r->mu);
      change(r->record.hosts[0]);
    }
    publish(*r);
  });
  const agent::run_result result = exec_.run(r->job, sink, r->stop);

  bool node_stopping = false;
  {
    std::lock_guard lock(mu_);
    node_stopping = shutting_down_;
  }
  {
    std::lock_guard lock(r->mu);
    auto& rec = r->record;
    rec.hosts[0].status = result.status;
    rec.complete_time = now_ms();
    if (r->stop.load() && node_stopping) {
      rec.status = deployment_status::failed;
      rec.error = error_information{
          "DEPLOYMENT_INTERRUPTED",
          "the node shut down during the deployment; no further script was started: redeploy to "
          "retry"};
    } else if (r->stop.load()) {
      rec.status = deployment_status::stopped;
      rec.error =
          error_information{"DEPLOYMENT_STOPPED", "the deployment was stopped by an operator"};
    } else {
      // One host: the verdict rules reduce to "the host succeeded".
      host_tally t;
      t.targets = 1;
      t.succeeded = result.status == host_status::succeeded ? 1 : 0;
      t.failed = result.status == host_status::failed ? 1 : 0;
      t.only_last_failed = false;
      auto config = reg_.get_config(rec.config);
      const verdict v = config ? decide(config.value(), t) : verdict::failed;
      rec.status =
          v == verdict::succeeded ? deployment_status::succeeded : deployment_status::failed;
      if (rec.status == deployment_status::failed) {
        rec.error = error_information{
            "HEALTH_CONSTRAINTS", fmt::format("host {} failed: {}", self_.name, result.message)};
      }
    }
  }
  publish(*r);
  spdlog::info("deployment {} finished: {}", id, to_string(r->record.status));
  std::lock_guard lock(mu_);
  active_.erase(group_id);
  r->done = true;
}

result<deployment_record> local_deployer::stop(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    for (auto& [group, r] : active_) {
      if (r->record.id == id) {
        r->stop = true;
        std::lock_guard rl(r->mu);
        return r->record;
      }
    }
  }
  return reg_.get_deployment(id);
}

result<log_text> local_deployer::read_log(const std::string& id, const std::string& host,
                                          const std::string& event, std::size_t max_bytes) const {
  MESH_TRY(auto d, reg_.get_deployment(id));
  if (!host.empty() && host != self_.name) {
    return make_error(
        errc::not_found,
        fmt::format("host '{}' is not a target of {} on this node (this node is '{}')", host, id,
                    self_.name));
  }
  if (!event.empty() && !agent::parse_lifecycle_event(event)) {
    return make_error(
        errc::invalid_argument,
        fmt::format("'{}' is not a lifecycle event name (e.g. ApplicationStart)", event));
  }
  if (!d.hosts.empty() && std::none_of(d.hosts.begin(), d.hosts.end(), [&](const host_progress& h) {
        return h.host == self_.name;
      })) {
    std::string names;
    for (const auto& h : d.hosts) names += (names.empty() ? "" : ", ") + h.host;
    return make_error(errc::not_found,
                      fmt::format("this host ('{}') is not a target of {}, so it has no log of it "
                                  "(its hosts: {}; name one with --host)",
                                  self_.name, id, names));
  }
  auto t = read_log_tail(exec_.log_file(d.group_id, d.id), event, max_bytes);
  if (!t && t.error().code == make_error_code(errc::not_found)) {
    return make_error(errc::not_found,
                      fmt::format("no log for {} on this host (it may have been pruned)", id));
  }
  return t;
}

}  // namespace meshdeploy::deploy

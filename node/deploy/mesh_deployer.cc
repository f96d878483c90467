#include "node/deploy/mesh_deployer.h"

#include "node/agent/lifecycle_event.h"
#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>

namespace meshdeploy::deploy {

namespace fs = std::filesystem;
namespace rec = records;

struct mesh_deployer::worker {
  std::string id;
  std::string group;  // app/group
  agent::local_deployment job;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<rec::event_progress> events;  // GUARDED_BY(mu)
  std::thread thread;
};

namespace {

std::vector<rec::event_progress> pending_events() {
  std::vector<rec::event_progress> out;
  for (agent::lifecycle_event e : agent::lifecycle_order()) {
    rec::event_progress ev;
    ev.name = std::string(agent::to_string(e));
    ev.status = "Pending";
    out.push_back(std::move(ev));
  }
  return out;
}

template <class P>
std::optional<P> payload_as(const rec::record& r) {
  auto p = rec::decode_payload(r.type, r.payload);
  if (!p || !std::holds_alternative<P>(p.value())) return std::nullopt;
  return std::get<P>(std::move(p).value());
}

std::optional<deployment_records> load(const rec::store& store, const std::string& id) {
  auto intent = store.get(rec::record_type::intent, id);
  if (!intent || !intent.value()) return std::nullopt;
  auto in = payload_as<rec::intent_payload>(*intent.value());
  if (!in) return std::nullopt;
  deployment_records d;
  d.intent = std::move(*in);
  d.created = intent.value()->time_ms;
  if (auto progress = store.scan(rec::record_type::progress, id + "/")) {
    for (const auto& r : progress.value()) {
      if (auto p = payload_as<rec::progress_payload>(r); p && p->deployment_id == id) {
        d.progress[p->host] = std::move(*p);
      }
    }
  }
  if (auto stop = store.get(rec::record_type::stop, id); stop && stop.value()) {
    d.stop = payload_as<rec::stop_payload>(*stop.value());
    d.stopped_at = stop.value()->time_ms;
  }
  if (auto ex = store.scan(rec::record_type::exclude, id + "/")) {
    for (const auto& r : ex.value()) {
      if (auto p = payload_as<rec::exclude_payload>(r); p && p->deployment_id == id) {
        d.excluded.insert(p->host);
      }
    }
  }
  return d;
}

// The group's intents and approvals, for admission.
struct group_view {
  std::vector<group_intent> intents;
  std::vector<rec::approval_payload> approvals;
  admission adm;
};

group_view load_group(const rec::store& store, const std::string& app, const std::string& group) {
  group_view g;
  if (auto all = store.scan(rec::record_type::intent)) {
    for (const auto& r : all.value()) {
      auto in = payload_as<rec::intent_payload>(r);
      if (in && in->app == app && in->group == group) {
        g.intents.push_back(group_intent{in->deployment_id, in->targets, r.time_ms});
      }
    }
  }
  if (auto all = store.scan(rec::record_type::approval, app + "/" + group + "/")) {
    for (const auto& r : all.value()) {
      auto a = payload_as<rec::approval_payload>(r);
      if (a && a->app == app && a->group == group) g.approvals.push_back(std::move(*a));
    }
  }
  g.adm = admit(g.intents, g.approvals);
  return g;
}

void apply_admission(deployment_records& d, const group_view& g) {
  const auto& chain = g.adm.chain;
  d.admitted = std::find(chain.begin(), chain.end(), d.intent.deployment_id) != chain.end();
  if (auto it = g.adm.lost_to.find(d.intent.deployment_id); it != g.adm.lost_to.end()) {
    d.lost_to = it->second;
  }
}

// The deployment a record is about ("" for other record types).
std::string deployment_of(const rec::record& r) {
  switch (r.type) {
    case rec::record_type::intent:
    case rec::record_type::stop:
      return r.key;
    case rec::record_type::progress:
    case rec::record_type::exclude:
      return r.key.substr(0, r.key.find('/'));
    case rec::record_type::approval:
      if (auto a = payload_as<rec::approval_payload>(r)) return a->child;
      return {};
    default:
      return {};
  }
}

deployment_config config_for(const registry& reg, const rec::intent_payload& in) {
  if (auto c = reg.get_config(in.config)) return c.value();
  // Unknown here (a custom config not yet replicated): judge by the signed K alone.
  const auto n = static_cast<std::uint32_t>(in.targets.size());
  deployment_config c;
  c.name = in.config;
  c.type = min_healthy_type::host_count;
  c.value = n > in.max_out_of_service ? n - in.max_out_of_service : 0;
  return c;
}

}  // namespace

mesh_deployer::mesh_deployer(registry& reg, const rec::store& store, agent::executor& exec,
                             std::string self, mesh_env env)
    : reg_(reg), store_(store), exec_(exec), self_(std::move(self)), env_(std::move(env)) {}

mesh_deployer::~mesh_deployer() { shutdown(); }

void mesh_deployer::shutdown() {
  shutting_down_ = true;
  for (auto& [id, w] : workers_) w->stop = true;
  for (auto& [id, w] : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  workers_.clear();
}

void mesh_deployer::start(const std::vector<agent::interrupted_run>& interrupted) {
  auto intents = store_.scan(rec::record_type::intent);
  if (!intents) {
    spdlog::error("deployments: cannot read intents: {}", intents.error().message);
    return;
  }
  for (const auto& r : intents.value()) {
    auto d = load(store_, r.key);
    if (!d) continue;
    const auto& targets = d->intent.targets;
    if (std::find(targets.begin(), targets.end(), self_) != targets.end() &&
        phase_of(*d, self_) == "entered") {
      // This host was inside the window when the node stopped: report it honestly.
      std::string message =
          "the node restarted during the deployment; the interrupted hook was not rerun";
      std::string script;
      for (const auto& i : interrupted) {
        if (i.deployment_id == r.key) {
          message = i.message;
          script = i.script;
        }
      }
      auto events = d->progress[self_].events;
      if (events.empty()) events = pending_events();
      bool marked = false;
      for (auto& e : events) {
        if (e.status == "InProgress" || (!marked && e.status == "Pending" && !script.empty())) {
          e.status = "Failed";
          e.error_code = "UnknownError";
          e.script = script;
          e.message = std::string(interrupted_prefix) + message;
          e.end_ms = now_ms();
          marked = true;
        } else if (e.status == "Pending") {
          e.status = "Skipped";
        }
      }
      publish_progress(r.key, "failed", events);
    }
  }
  for (const auto& r : intents.value()) refresh(r.key);
}

void mesh_deployer::on_record(const rec::record& r) {
  if (shutting_down_) return;
  if (r.type == rec::record_type::revision) {
    // A revision some intent was waiting for arrived: try again.
    const std::string id = r.key.substr(r.key.find('/') + 1);
    if (auto it = fetching_.find(id); it != fetching_.end() && !it->second.empty()) {
      auto waiting = it->second;
      fetching_.erase(it);
      for (const auto& d : waiting) refresh(d);
    }
    return;
  }
  if (r.type == rec::record_type::config || r.type == rec::record_type::group) return;
  const std::string id = deployment_of(r);
  if (id.empty()) return;
  // Records arrive in bursts (every host's per-event progress): refresh each deployment once
  // per burst, after the queued records are in.
  dirty_.insert(id);
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    env_.post([this] { flush_dirty(); });
  }
}

void mesh_deployer::flush_dirty() {
  flush_scheduled_ = false;
  auto ids = std::move(dirty_);
  dirty_.clear();
  for (const auto& id : ids) refresh(id);
}

result<deployment_record> mesh_deployer::refresh_now(const std::string& deployment_id) {
  refresh(deployment_id);
  return reg_.get_deployment(deployment_id);
}

void mesh_deployer::refresh(const std::string& id) {
  auto d = load(store_, id);
  if (!d) return;
  const group_view group = load_group(store_, d->intent.app, d->intent.group);
  apply_admission(*d, group);
  approve(group.adm, group.intents, d->intent.app, d->intent.group);
  const deployment_config config = config_for(reg_, d->intent);
  std::string format;
  if (auto rv = reg_.get_revision(d->intent.app, d->intent.revision)) format = rv.value().format;
  deployment_record doc = view(*d, config, group_id(d->intent.app, d->intent.group), format);
  auto old = reg_.get_deployment(id);
  bool changed = true;
  if (old) {
    deployment_record prev = old.value();
    doc.version = prev.version;
    changed = to_json(prev) != to_json(doc);
    if (changed) doc.version = prev.version + 1;
  } else {
    doc.version = 1;
  }
  const bool now_over = is_terminal(doc.status) && !(old && is_terminal(old.value().status));
  if (changed) {
    if (auto p = reg_.put_deployment(doc, storage::durability::buffered); !p) {
      spdlog::error("deployment {}: cannot store its status: {}", id, p.error().message);
    } else if (env_.changed) {
      env_.changed(id);
    }
  }
  if (now_over) {
    // The group's next deployment may now be approved and admitted.
    for (const auto& in : group.intents) {
      if (in.id != id) {
        auto other = reg_.get_deployment(in.id);
        if (!other || !is_terminal(other.value().status)) refresh(in.id);
      }
    }
  }
  const auto& targets = d->intent.targets;
  if (std::find(targets.begin(), targets.end(), self_) != targets.end()) {
    take_part(id, *d, config);
  }
}

void mesh_deployer::approve(const admission& adm, const std::vector<group_intent>& intents,
                            const std::string& app, const std::string& group) {
  const std::string head = adm.chain.empty() ? std::string() : adm.chain.back();
  if (!head.empty()) {
    auto h = reg_.get_deployment(head);
    if (!h || !is_terminal(h.value().status)) return;  // one deployment per group at a time
  }
  // One child per parent: never sign a second approval for this parent.
  auto mine = store_.get(rec::record_type::approval, app + "/" + group + "/" + head + "/" + self_);
  if (!mine || mine.value()) return;
  // The earliest waiting intent that targets this host.
  const group_intent* pick = nullptr;
  for (const auto& in : intents) {
    if (in.targets.empty() ||
        std::find(in.targets.begin(), in.targets.end(), self_) == in.targets.end() ||
        std::find(adm.chain.begin(), adm.chain.end(), in.id) != adm.chain.end() ||
        adm.lost_to.count(in.id) != 0) {
      continue;
    }
    if (auto doc = reg_.get_deployment(in.id); doc && is_terminal(doc.value().status)) continue;
    if (pick == nullptr || std::pair(in.created, in.id) < std::pair(pick->created, pick->id)) {
      pick = &in;
    }
  }
  if (pick == nullptr) return;
  rec::approval_payload a;
  a.app = app;
  a.group = group;
  a.parent = head;
  a.child = pick->id;
  a.host = self_;
  if (auto r = env_.publish(a, true); !r) {
    spdlog::error("deployment {}: cannot publish approval: {}", pick->id, r.error().message);
  }
}

bool mesh_deployer::bundle_ready(const std::string& id, const rec::intent_payload& in) {
  auto rv = reg_.get_revision(in.app, in.revision);
  if (rv && reg_.has_bundle(rv.value())) return true;
  auto& waiting = fetching_[in.revision];
  const bool first = waiting.empty();
  waiting.insert(id);
  if (!rv || !first) return false;  // the revision record has not arrived yet, or fetch running
  auto r = store_.get(rec::record_type::revision, in.app + "/" + in.revision);
  if (!r || !r.value()) return false;
  auto payload = payload_as<rec::revision_payload>(*r.value());
  if (!payload) return false;
  spdlog::info("deployment {}: fetching bundle {} ({} bytes)", id, in.revision.substr(0, 12),
               payload->size);
  env_.fetch_bundle(*payload, [this, rev = *payload](result<fs::path> file) {
    auto waiting = std::move(fetching_[rev.id]);
    fetching_.erase(rev.id);
    if (!file) {
      spdlog::error("bundle {}: {}", rev.id.substr(0, 12), file.error().message);
      // Fail the waiting deployments on this host honestly: without the bundle it cannot enter.
      for (const auto& d : waiting) {
        auto events = pending_events();
        for (auto& e : events) {
          e.status = "Skipped";
          if (e.name == "DownloadBundle") {
            e.status = "Failed";
            e.error_code = "UnknownError";
            e.message = file.error().message;
          }
        }
        publish_progress(d, "failed", events);
      }
      return;
    }
    if (auto s = reg_.store_bundle(rev, file.value()); !s) {
      spdlog::error("bundle {}: {}", rev.id.substr(0, 12), s.error().message);
    }
    for (const auto& d : waiting) refresh(d);
  });
  return false;
}

void mesh_deployer::take_part(const std::string& id, const deployment_records& d,
                              const deployment_config& config) {
  const std::string phase = phase_of(d, self_);
  if (phase == "resolved" || phase == "failed" || phase == "skipped") return;
  if (auto it = workers_.find(id); it != workers_.end()) {
    if (d.stop) it->second->stop = true;
    return;
  }
  if (phase == "entered" || shutting_down_) return;  // start() reports interrupted runs
  const gate_decision g = gate(d, config, self_);
  if (g == gate_decision::skip) {
    if (skipped_.insert(id).second) {
      auto events = pending_events();
      for (auto& e : events) e.status = "Skipped";
      publish_progress(id, "skipped", events);
    }
    return;
  }
  // Fetch the bundle as soon as the intent is seen, before our turn.
  const bool ready = bundle_ready(id, d.intent);
  if (g == gate_decision::wait || !ready) return;
  const std::string group = d.intent.app + "/" + d.intent.group;
  if (busy_groups_.count(group) != 0) {
    waiting_for_group_.insert(id);
    return;
  }
  auto rv = reg_.get_revision(d.intent.app, d.intent.revision);
  if (!rv) return;
  auto w = std::make_shared<worker>();
  w->id = id;
  w->group = group;
  w->job = agent::local_deployment{id,
                                   d.intent.app,
                                   d.intent.group,
                                   group_id(d.intent.app, d.intent.group),
                                   d.intent.revision,
                                   reg_.bundle_path(rv.value()),
                                   std::nullopt,
                                   d.intent.ignore_stop_failures};
  if (!d.intent.file_exists_behavior.empty()) {
    w->job.file_exists_override = agent::parse_file_exists_behavior(d.intent.file_exists_behavior);
  }
  w->events = pending_events();
  // Durable before any destructive step: the entered record is a synced write.
  publish_progress(id, "entered", w->events);
  if (phase_of(*load(store_, id), self_) != "entered") {
    spdlog::error("deployment {}: could not record entering the window; not starting", id);
    return;
  }
  busy_groups_.insert(group);
  workers_[id] = w;
  spdlog::info("deployment {}: entering the update window on {}", id, self_);
  w->thread = std::thread([this, w] { run_worker(w); });
}

namespace {

class event_sink final : public agent::progress_sink {
 public:
  explicit event_sink(
      std::function<void(agent::lifecycle_event, std::function<void(rec::event_progress&)>)> update)
      : update_(std::move(update)) {}
  void event_started(agent::lifecycle_event e, unix_ms at) override {
    update_(e, [at](rec::event_progress& p) {
      p.status = "InProgress";
      p.start_ms = at;
    });
  }
  void event_finished(agent::lifecycle_event e, host_status s,
                      const std::optional<diagnostics>& diag, unix_ms at) override {
    update_(e, [&](rec::event_progress& p) {
      p.status = std::string(to_string(s));
      if (p.start_ms == 0 && s != host_status::skipped) p.start_ms = at;
      p.end_ms = at;
      if (diag) {
        p.error_code = diag->error_code;
        p.script = diag->script_name;
        p.message = diag->message;
        p.log_tail = diag->log_tail;
      }
    });
  }

 private:
  std::function<void(agent::lifecycle_event, std::function<void(rec::event_progress&)>)> update_;
};

}  // namespace

void mesh_deployer::run_worker(std::shared_ptr<worker> w) {
  // Progress goes out when an event finishes (not when it starts: every record costs a
  // signature and a push to several peers, and the next one supersedes it).
  event_sink sink([&](agent::lifecycle_event e, std::function<void(rec::event_progress&)> change) {
    std::vector<rec::event_progress> copy;
    bool finished = false;
    {
      std::lock_guard lock(w->mu);
      for (auto& p : w->events) {
        if (p.name == agent::to_string(e)) {
          change(p);
          finished = p.status != "InProgress";
        }
      }
      copy = w->events;
    }
    if (finished) publish_progress(w->id, "entered", copy, /*durable=*/false);
  });
  const agent::run_result result = exec_.run(w->job, sink, w->stop);
  std::vector<rec::event_progress> final_events;
  {
    std::lock_guard lock(w->mu);
    for (auto& p : w->events) {
      if (p.status == "Pending") p.status = "Skipped";
    }
    final_events = w->events;
  }
  // Resolve (free the token) only when the whole lifecycle, ValidateService included, passed.
  // A run cut short by an operator's stop ends skipped (its events show what ran); one cut
  // short by this node shutting down, or that failed, ends failed and keeps its token.
  const bool ok = result.status == host_status::succeeded;
  const bool stopped = !ok && w->stop.load() && !shutting_down_.load();
  publish_progress(w->id, ok ? "resolved" : (stopped ? "skipped" : "failed"), final_events);
  spdlog::info("deployment {}: {} on {}{}", w->id,
               ok ? "resolved" : (stopped ? "stopped" : "failed"), self_,
               ok ? "" : ": " + result.message);
  env_.post([this, w] {
    if (w->thread.joinable()) w->thread.join();
    workers_.erase(w->id);
    busy_groups_.erase(w->group);
    auto waiting = std::move(waiting_for_group_);
    waiting_for_group_.clear();
    refresh(w->id);
    for (const auto& d : waiting) refresh(d);
  });
}

void mesh_deployer::publish_progress(const std::string& id, const std::string& phase,
                                     const std::vector<rec::event_progress>& events, bool durable) {
  rec::progress_payload p;
  p.deployment_id = id;
  p.host = self_;
  p.phase = phase;
  p.events = events;
  for (auto& e : p.events) {
    if (e.log_tail.size() > 4096) e.log_tail = e.log_tail.substr(e.log_tail.size() - 4096);
  }
  if (auto r = env_.publish(p, durable); !r) {
    spdlog::error("deployment {}: cannot publish progress ({}): {}", id, phase, r.error().message);
  }
}

}  // namespace meshdeploy::deploy

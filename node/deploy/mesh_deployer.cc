#include "node/deploy/mesh_deployer.h"

#include "node/agent/lifecycle_event.h"
#include "node/deploy/deployment_config.h"
#include "node/deploy/rollout/deployment_view.h"
#include "node/deploy/rollout/planning.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <thread>

namespace meshdeploy::deploy {

namespace fs = std::filesystem;
namespace rec = records;
namespace ro = rollout;

struct mesh_deployer::group_state {
  std::string app;
  std::string group;
  std::unique_ptr<ro::host_driver> driver;
  // The journal could not be read: this host takes no part (it could vote twice), views only.
  bool read_only = false;
  std::set<std::string> dirty;                     // deployments whose status document to recompute
  std::set<std::string> terminal;                  // deployments whose stored document is terminal
  std::map<std::string, deployment_record> views;  // stored documents of open deployments
  bool caught_up_checked = false;
};

struct mesh_deployer::worker {
  std::string id;
  std::string group;  // app/group
  agent::local_deployment job;
  std::atomic<bool> stop{false};
  std::thread thread;
};

namespace {

template <class P>
std::optional<P> payload_as(const rec::record& r) {
  auto p = rec::decode_payload(r.type, r.payload);
  if (!p || !std::holds_alternative<P>(p.value())) return std::nullopt;
  return std::get<P>(std::move(p).value());
}

std::string group_key(const std::string& app, const std::string& group) {
  return app + "/" + group;
}

// "d-" and 9 characters of the deployment id alphabet, from a hash of `seed`.
std::string derived_id(const std::string& seed) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  unsigned char h[16];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(seed.data()), seed.size(),
                     nullptr, 0);
  std::string id = "d-";
  for (int i = 0; i < 9; ++i) id += kAlphabet[h[i] % (sizeof(kAlphabet) - 1)];
  return id;
}

class event_sink final : public agent::progress_sink {
 public:
  using report = std::function<void(rec::event_progress)>;
  explicit event_sink(report r) : report_(std::move(r)) {}
  void event_started(agent::lifecycle_event e, unix_ms at) override {
    starts_[static_cast<std::size_t>(e)] = at;
  }
  // Progress goes out when an event finishes (every record costs a signature and a push to
  // several peers, and the next one supersedes it).
  void event_finished(agent::lifecycle_event e, host_status s,
                      const std::optional<diagnostics>& diag, unix_ms at) override {
    rec::event_progress p;
    p.name = std::string(agent::to_string(e));
    p.status = std::string(to_string(s));
    auto it = starts_.find(static_cast<std::size_t>(e));
    p.start_ms = it != starts_.end() ? it->second : (s == host_status::skipped ? 0 : at);
    p.end_ms = at;
    if (diag) {
      p.error_code = diag->error_code;
      p.script = diag->script_name;
      p.message = diag->message;
      p.log_tail = diag->log_tail;
      if (p.log_tail.size() > 4096) p.log_tail = p.log_tail.substr(p.log_tail.size() - 4096);
    }
    report_(std::move(p));
  }

 private:
  report report_;
  std::map<std::size_t, unix_ms> starts_;
};

}  // namespace

std::string auto_rollback_id(const std::string& failed) { return derived_id("rollback/" + failed); }

std::string catch_up_id(const std::string& host, const std::string& after) {
  return derived_id("catch-up/" + host + "/" + after);
}

std::string host_creator(const std::string& host) {
  return std::string(ro::node_creator_prefix) + host;
}

mesh_deployer::mesh_deployer(registry& reg, const rec::store& store, journal_store& journals,
                             agent::executor& exec, std::string self, mesh_options options,
                             mesh_env env)
    : reg_(reg),
      store_(store),
      journals_(journals),
      exec_(exec),
      self_(std::move(self)),
      options_(std::move(options)),
      env_(std::move(env)),
      started_(std::chrono::steady_clock::now()) {}

mesh_deployer::~mesh_deployer() { shutdown(); }

void mesh_deployer::shutdown() {
  shutting_down_ = true;
  for (auto& [id, w] : workers_) w->stop = true;
  for (auto& [id, w] : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  workers_.clear();
  if (auto f = reg_.flush_deferred_deployments(); !f) {
    spdlog::warn("deployment status documents not stored (recomputed at start): {}",
                 f.error().message);
  }
}

mesh_deployer::group_state* mesh_deployer::group_for(const std::string& app,
                                                     const std::string& group, bool create) {
  const std::string key = group_key(app, group);
  if (auto it = groups_.find(key); it != groups_.end()) return it->second.get();
  if (!create) return nullptr;
  auto g = std::make_unique<group_state>();
  g->app = app;
  g->group = group;
  ro::host_journal journal;
  if (auto j = journals_.load(app, group)) {
    journal = std::move(j).value();
  } else {
    spdlog::critical(
        "deployments of {}: cannot read this host's rollout journal ({}); it takes "
        "no part in the group's deployments until that is repaired",
        key, j.error().message);
    g->read_only = true;
  }
  ro::driver_options o;
  o.progress_deadline_ms = options_.progress_deadline.count();
  g->driver = std::make_unique<ro::host_driver>(self_, app, group, std::move(journal), o);
  g->driver->set_settled(records_settled());
  (void)g->driver->on_tick(now_ms());  // the driver's clock; nothing is known yet to act on
  // Every approval of the group (admission reads them all).
  if (auto all = store_.scan(rec::record_type::approval, key + "/")) {
    for (const auto& r : all.value()) {
      if (auto a = payload_as<rec::approval_payload>(r)) g->driver->add_approval(*a);
    }
  }
  auto* raw = g.get();
  groups_[key] = std::move(g);
  return raw;
}

void mesh_deployer::add_deployment(group_state& g, const rec::record& intent) {
  auto in = payload_as<rec::intent_payload>(intent);
  if (!in) return;
  const std::string id = in->deployment_id;
  g.driver->add_intent(*in, intent.time_ms);
  group_of_[id] = &g;
  // What arrived before the intent (progress names no group).
  if (auto progress = store_.scan(rec::record_type::progress, id + "/")) {
    for (const auto& r : progress.value()) {
      if (auto p = payload_as<rec::progress_payload>(r); p && p->deployment_id == id) {
        g.driver->add_progress(*p, r.version);
      }
    }
  }
  if (auto stop = store_.get(rec::record_type::stop, id); stop && stop.value()) {
    if (auto s = payload_as<rec::stop_payload>(*stop.value())) g.driver->add_stop(*s);
  }
  if (auto ex = store_.scan(rec::record_type::exclude, id + "/")) {
    for (const auto& r : ex.value()) {
      if (auto x = payload_as<rec::exclude_payload>(r); x && x->deployment_id == id) {
        g.driver->add_exclude(*x);
      }
    }
  }
  g.dirty.insert(id);
}

bool mesh_deployer::add_record(group_state& g, const rec::record& r) {
  switch (r.type) {
    case rec::record_type::intent:
      if (group_of_.count(r.key) != 0) {
        auto in = payload_as<rec::intent_payload>(r);
        return in && g.driver->add_intent(*in, r.time_ms);
      }
      add_deployment(g, r);
      return true;
    case rec::record_type::approval:
      if (auto a = payload_as<rec::approval_payload>(r)) {
        if (!g.driver->add_approval(*a)) return false;
        // Admission may change for every open intent of the group.
        for (const auto& [id, e] : g.driver->records().intents()) {
          if (g.terminal.count(id) == 0) g.dirty.insert(id);
        }
        return true;
      }
      return false;
    case rec::record_type::progress:
      if (auto p = payload_as<rec::progress_payload>(r);
          p && g.driver->add_progress(*p, r.version)) {
        g.dirty.insert(p->deployment_id);
        return true;
      }
      return false;
    case rec::record_type::stop:
      if (auto s = payload_as<rec::stop_payload>(r); s && g.driver->add_stop(*s)) {
        g.dirty.insert(s->deployment_id);
        return true;
      }
      return false;
    case rec::record_type::exclude:
      if (auto x = payload_as<rec::exclude_payload>(r); x && g.driver->add_exclude(*x)) {
        g.dirty.insert(x->deployment_id);
        return true;
      }
      return false;
    default:
      return false;
  }
}

void mesh_deployer::start(const std::vector<agent::interrupted_run>& interrupted) {
  for (const auto& i : interrupted) interrupted_[i.deployment_id] = i;
  auto intents = store_.scan(rec::record_type::intent);
  if (!intents) {
    spdlog::error("deployments: cannot read intents: {}", intents.error().message);
    return;
  }
  for (const auto& r : intents.value()) {
    auto in = payload_as<rec::intent_payload>(r);
    if (!in) continue;
    add_deployment(*group_for(in->app, in->group, true), r);
  }
  for (auto& [key, g] : groups_) {
    if (g->read_only) {
      refresh_views(*g);
      continue;
    }
    std::map<std::string, ro::interruption> why;
    for (const auto& [id, i] : interrupted_) {
      why[id] = ro::interruption{i.event, i.script, i.message};
    }
    settle(*g, g->driver->on_recovered(why));
    refresh_views(*g);
    maybe_auto_rollback(*g);
  }
}

void mesh_deployer::on_record(const rec::record& r) {
  if (shutting_down_) return;
  group_state* g = nullptr;
  switch (r.type) {
    case rec::record_type::revision: {
      // A revision some prefetch was waiting for arrived: try again.
      const std::string id = r.key.substr(r.key.find('/') + 1);
      auto it = fetching_.find("?" + id);
      if (it == fetching_.end()) return;
      auto waiting = std::move(it->second);
      fetching_.erase(it);
      for (auto& done : waiting) {
        prefetch(r.key.substr(0, r.key.find('/')), id, std::move(done));
      }
      return;
    }
    case rec::record_type::intent:
      if (auto in = payload_as<rec::intent_payload>(r)) g = group_for(in->app, in->group, true);
      break;
    case rec::record_type::approval:
      if (auto a = payload_as<rec::approval_payload>(r)) g = group_for(a->app, a->group, true);
      break;
    case rec::record_type::progress:
    case rec::record_type::stop:
    case rec::record_type::exclude: {
      // Unknown deployment: its records are read when the intent arrives.
      auto it = group_of_.find(r.key.substr(0, r.key.find('/')));
      if (it != group_of_.end()) g = it->second;
      break;
    }
    default:
      return;
  }
  if (g == nullptr || !add_record(*g, r)) return;
  // Records arrive in bursts (every host's progress): act once per burst.
  dirty_groups_.insert(group_key(g->app, g->group));
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    env_.post([this] { flush_dirty(); });
  }
}

void mesh_deployer::flush_dirty() {
  flush_scheduled_ = false;
  auto keys = std::move(dirty_groups_);
  dirty_groups_.clear();
  for (const auto& key : keys) {
    auto it = groups_.find(key);
    if (it == groups_.end()) continue;
    group_state& g = *it->second;
    if (!g.read_only) settle(g, g.driver->step());
    refresh_views(g);
    maybe_auto_rollback(g);
  }
}

bool mesh_deployer::records_settled() {
  if (settled_) return true;
  const bool in_sync = env_.records_in_sync && env_.records_in_sync();
  if (!options_.empty_data_dir || in_sync ||
      std::chrono::steady_clock::now() - started_ >= options_.catch_up_delay) {
    if (options_.empty_data_dir) {
      if (!options_.settling_marker.empty()) {
        std::error_code ec;
        std::filesystem::remove(options_.settling_marker, ec);
        if (ec) {
          spdlog::warn("cannot remove {}: {}", options_.settling_marker.string(), ec.message());
        }
      }
      spdlog::info(
          "records {} since this node started on an empty data dir: taking part in "
          "deployments",
          in_sync ? "match a peer's" : "did not settle within the catch-up delay");
    }
    settled_ = true;
  }
  return settled_;
}

void mesh_deployer::on_tick() {
  if (shutting_down_) return;
  const bool settled = records_settled();
  for (auto& [key, g] : groups_) {
    if (g->read_only) continue;
    g->driver->set_settled(settled);
    settle(*g, g->driver->on_tick(now_ms()));
    refresh_views(*g);
  }
  maybe_catch_up();
}

ro::target_plan mesh_deployer::plan(const std::string& app, const std::string& group,
                                    std::vector<std::string> hosts,
                                    const std::string& deployment_id) {
  if (group_state* g = group_for(app, group, false)) {
    return ro::plan_targets(g->driver->records(), g->driver->admission(), std::move(hosts),
                            deployment_id);
  }
  const ro::record_set empty(app, group);
  return ro::plan_targets(empty, ro::admit(empty), std::move(hosts), deployment_id);
}

result<deployment_record> mesh_deployer::refresh_now(const std::string& deployment_id) {
  if (auto it = group_of_.find(deployment_id); it == group_of_.end()) {
    // Not seen yet (the API publishes and asks at once): read it from the store.
    if (auto r = store_.get(rec::record_type::intent, deployment_id); r && r.value()) {
      on_record(*r.value());
    }
  }
  if (auto it = group_of_.find(deployment_id); it != group_of_.end()) {
    group_state& g = *it->second;
    if (!g.read_only) settle(g, g.driver->step());
    g.dirty.insert(deployment_id);
    refresh_views(g);
  }
  return reg_.get_deployment(deployment_id);
}

void mesh_deployer::settle(group_state& g, std::vector<ro::action> actions) {
  if (g.read_only) return;
  for (const auto& a : actions) {
    if (!perform(g, a)) {
      spdlog::critical(
          "deployments of {}/{}: stopped acting on this host (see above); restart "
          "the node once the cause is fixed",
          g.app, g.group);
      g.read_only = true;
      return;
    }
  }
}

bool mesh_deployer::perform(group_state& g, const ro::action& a) {
  switch (a.kind) {
    case ro::action_kind::prefetch:
      if (const ro::intent_entry* e = g.driver->records().intent(a.deployment)) {
        prefetch(e->intent.app, a.revision, [id = a.deployment](result<void> r) {
          if (!r) spdlog::warn("deployment {}: bundle prefetch failed: {}", id, r.error().message);
        });
      }
      return true;
    case ro::action_kind::persist_journal:
      if (auto s = journals_.save(g.app, g.group, a.journal, a.sync); !s) {
        spdlog::critical("deployments of {}/{}: cannot write the rollout journal: {}", g.app,
                         g.group, s.error().message);
        return false;
      }
      return true;
    case ro::action_kind::publish_approval:
      if (auto r = env_.publish(a.approval, true, 0); !r) {
        spdlog::error("deployment {}: cannot publish approval: {}", a.approval.child,
                      r.error().message);
      }
      return true;
    case ro::action_kind::publish_progress: {
      // entered (version 1) and final records are synced; per-event updates are recomputable.
      const bool durable = a.version == 1 || ro::is_final_phase(a.progress.phase);
      if (auto r = env_.publish(a.progress, durable, a.version); !r) {
        spdlog::error("deployment {}: cannot publish progress ({}): {}", a.deployment,
                      a.progress.phase, r.error().message);
        if (a.version == 1) return false;  // never start without `entered` out
      }
      return true;
    }
    case ro::action_kind::start_execution:
      start_worker(g, a.deployment);
      return true;
    case ro::action_kind::stop_execution:
      if (auto it = workers_.find(a.deployment); it != workers_.end()) it->second->stop = true;
      return true;
    case ro::action_kind::republish_intent:
      // The operator's signed intent lives in the store with the journal (one data dir): if the
      // store lost it, so did the journal. Anti-entropy spreads it when the store has it.
      if (auto r = store_.get(rec::record_type::intent, a.deployment); !r || !r.value()) {
        spdlog::warn("deployment {}: approved intent is not held here and cannot be re-signed",
                     a.deployment);
      }
      return true;
  }
  return true;
}

void mesh_deployer::refresh_views(group_state& g) {
  auto ids = std::move(g.dirty);
  g.dirty.clear();
  for (const auto& id : ids) write_view(g, id);
}

void mesh_deployer::write_view(group_state& g, const std::string& id, bool follow_link) {
  const ro::record_set& rs = g.driver->records();
  const ro::intent_entry* e = rs.intent(id);
  if (e == nullptr) return;
  // The document last stored, from memory while the deployment is open (reading it back from
  // the store and comparing the two as JSON was most of a node's CPU during a 32-host rollout).
  auto cached = g.views.find(id);
  std::optional<deployment_record> stored;
  if (cached == g.views.end()) {
    if (auto old = reg_.get_deployment(id)) stored = std::move(old).value();
  }
  const deployment_record* prev = cached != g.views.end() ? &cached->second
                                  : stored                ? &*stored
                                                          : nullptr;
  std::string format = prev != nullptr ? prev->bundle_format : "";
  if (format.empty()) {
    if (auto rv = reg_.get_revision(g.app, e->intent.revision)) format = rv.value().format;
  }
  deployment_record doc =
      ro::view(rs, g.driver->admission(), id, ro::view_context{group_id(g.app, g.group), format});
  doc.version = prev != nullptr ? prev->version : 0;
  const bool changed = prev == nullptr || !(*prev == doc);
  if (changed) ++doc.version;
  const bool terminal = is_terminal(doc.status);
  const std::string rollback_of = doc.rollback_of;
  if (changed) {
    // An open deployment's document changes with every host's progress: held in memory by the
    // registry (written at shutdown; recomputed from the records at start); an ended one is
    // written at once.
    if (!terminal) {
      reg_.put_deployment_deferred(doc);
    } else if (auto p = reg_.put_deployment(doc, storage::durability::buffered); !p) {
      spdlog::error("deployment {}: cannot store its status: {}", id, p.error().message);
      g.views.erase(id);  // read back from the store next time
      return;
    }
    if (env_.changed) env_.changed(id);
  }
  if (terminal) {
    // Ended: rarely changes again (late host rows, a rollback link), so it is read back then.
    g.terminal.insert(id);
    g.views.erase(id);
  } else if (changed || cached == g.views.end()) {
    g.views.insert_or_assign(id, std::move(doc));
  }
  // The rolled-back deployment's document names this one (one level: signed intents could
  // name each other in a cycle).
  if (changed && follow_link && !rollback_of.empty() && rs.intent(rollback_of) != nullptr) {
    write_view(g, rollback_of, false);
  }
}

void mesh_deployer::maybe_auto_rollback(group_state& g) {
  if (g.read_only) return;
  const ro::record_set& rs = g.driver->records();
  auto plan = ro::auto_rollback_due(rs, g.driver->admission());
  if (!plan) return;
  auto grp = reg_.get_group(g.app, g.group);
  if (!grp || !grp.value().auto_rollback) return;
  const ro::intent_entry* failed = rs.intent(plan->rolls_back);
  if (failed == nullptr) return;
  // Only the failed deployment's admission committee writes it (they all write the same
  // deployment id, so their copies are one deployment).
  const auto& committee = failed->committee;
  if (std::find(committee.begin(), committee.end(), self_) == committee.end()) return;
  const std::string id = auto_rollback_id(plan->rolls_back);
  if (rs.intent(id) != nullptr) return;
  if (auto held = store_.get(rec::record_type::intent, id); !held || held.value()) return;
  rec::intent_payload in = failed->intent;
  in.deployment_id = id;
  in.revision = plan->target.revision;
  in.rollback_of = plan->rolls_back;
  in.creator = host_creator(self_);
  in.targets = ro::order_targets(rs, g.driver->admission(), failed->intent.targets, id);
  spdlog::info("deployment {} failed: rolling {}/{} back to revision {} as {}", plan->rolls_back,
               g.app, g.group, in.revision.substr(0, 12), id);
  if (auto r = env_.publish(in, true, 0); !r) {
    spdlog::error("deployment {}: cannot publish the automatic rollback: {}", plan->rolls_back,
                  r.error().message);
  }
}

void mesh_deployer::maybe_catch_up() {
  if (!options_.catch_up) return;
  // Judge what this host lacks only once its records match a peer's, or at the latest after
  // catch_up_delay (alone, or the records never settle): judged earlier, a host that has not
  // yet received a group's newest deployment would catch up to an older revision.
  const bool in_sync = env_.records_in_sync && env_.records_in_sync();
  if (!in_sync && std::chrono::steady_clock::now() - started_ < options_.catch_up_delay) return;
  auto apps = reg_.list_apps();
  if (!apps) return;
  for (const auto& app : apps.value()) {
    auto groups = reg_.list_groups(app.name);
    if (!groups) continue;
    for (const auto& grp : groups.value()) {
      if (!matches(grp.tag_sets, options_.tags)) continue;
      group_state* g = group_for(app.name, grp.name, false);
      if (g == nullptr || g->read_only) continue;  // nothing ever deployed to the group
      const ro::record_set& rs = g->driver->records();
      auto target = ro::catch_up(rs, g->driver->admission(), self_);
      if (!target) continue;
      const std::string id = catch_up_id(self_, target->deployment);
      if (rs.intent(id) != nullptr) continue;
      if (auto held = store_.get(rec::record_type::intent, id); !held || held.value()) continue;
      const ro::intent_entry* last = rs.intent(target->deployment);
      if (last == nullptr) continue;
      rec::intent_payload in;
      in.deployment_id = id;
      in.app = app.name;
      in.group = grp.name;
      in.revision = target->revision;
      in.config = "OneAtATime";
      in.targets = {self_};
      // The group's hosts still count: a catch-up needs a majority of them, like any
      // deployment, so it cannot run beside one this host has not heard of yet.
      in.electorate = ro::plan_electorate(rs, g->driver->admission(), in.targets);
      in.max_out_of_service = 1;
      in.ignore_stop_failures = last->intent.ignore_stop_failures;
      in.file_exists_behavior = last->intent.file_exists_behavior;
      in.creator = host_creator(self_);
      spdlog::info(
          "{}/{}: this host lacks the last successful revision {} (deployment {}): "
          "catching up as {}",
          app.name, grp.name, target->revision.substr(0, 12), target->deployment, id);
      if (auto r = env_.publish(in, true, 0); !r) {
        spdlog::error("{}/{}: cannot publish the catch-up deployment: {}", app.name, grp.name,
                      r.error().message);
      }
    }
  }
}

void mesh_deployer::prefetch(const std::string& app, const std::string& revision,
                             std::function<void(result<void>)> done) {
  auto rv = reg_.get_revision(app, revision);
  if (rv && reg_.has_bundle(rv.value())) {
    done(ok());
    return;
  }
  if (!rv) {
    // The revision record has not arrived yet: on_record(revision) retries.
    fetching_["?" + revision].push_back(std::move(done));
    return;
  }
  auto& waiting = fetching_[revision];
  waiting.push_back(std::move(done));
  if (waiting.size() > 1) return;  // a fetch is running
  auto r = store_.get(rec::record_type::revision, app + "/" + revision);
  if (!r || !r.value()) return;
  auto payload = payload_as<rec::revision_payload>(*r.value());
  if (!payload) return;
  spdlog::info("fetching bundle {} ({} bytes)", revision.substr(0, 12), payload->size);
  env_.fetch_bundle(
      *payload,
      [this, id = payload->id](std::uint64_t held, std::uint64_t size) {
        on_download_progress(id, held, size);
      },
      [this, rev = *payload](result<fs::path> file) {
        auto waiting = std::move(fetching_[rev.id]);
        fetching_.erase(rev.id);
        waiting_downloads_.erase(rev.id);
        result<void> outcome = ok();
        if (!file) {
          outcome = file.error();
        } else if (auto s = reg_.store_bundle(rev, file.value(), /*pieces_verified=*/true); !s) {
          outcome = s.error();
        }
        for (auto& done : waiting) done(outcome);
      });
}

void mesh_deployer::on_download_progress(const std::string& revision, std::uint64_t held,
                                         std::uint64_t size) {
  auto it = waiting_downloads_.find(revision);
  if (it == waiting_downloads_.end() || size == 0) return;
  const int percent = static_cast<int>(held * 100 / size);
  for (auto& w : it->second) {
    if (w.shown_percent >= 0 && percent < w.shown_percent + 5 && held < size) continue;
    auto git = groups_.find(w.group);
    if (git == groups_.end() || shutting_down_) continue;
    w.shown_percent = percent;
    rec::event_progress ev;
    ev.name = std::string(agent::to_string(agent::lifecycle_event::download_bundle));
    ev.status = "InProgress";
    ev.start_ms = w.start_ms;
    ev.message = fmt::format("downloading the bundle: {:.1f} of {:.1f} MiB ({}%)",
                             static_cast<double>(held) / (1 << 20),
                             static_cast<double>(size) / (1 << 20), percent);
    settle(*git->second, git->second->driver->on_event(w.deployment, ev));
    refresh_views(*git->second);
  }
}

void mesh_deployer::fail_start(group_state& g, const std::string& id, const std::string& message) {
  rec::event_progress ev;
  ev.name = std::string(agent::to_string(agent::lifecycle_event::download_bundle));
  ev.status = "Failed";
  ev.error_code = "UnknownError";
  ev.message = message;
  ev.start_ms = ev.end_ms = now_ms();
  settle(g, g.driver->on_event(id, ev));
  settle(g, g.driver->on_execution_finished(id, ro::execution_end::failed));
  refresh_views(g);
}

void mesh_deployer::start_worker(group_state& g, const std::string& id) {
  const ro::intent_entry* e = g.driver->records().intent(id);
  if (e == nullptr) return;
  const rec::intent_payload in = e->intent;
  const std::string key = group_key(g.app, g.group);
  const std::int64_t entered_ms = now_ms();
  prefetch(in.app, in.revision, [this, key, id, in](result<void> fetched) {
    auto git = groups_.find(key);
    if (git == groups_.end() || shutting_down_) return;
    group_state& g = *git->second;
    if (!fetched) {
      fail_start(g, id, "cannot get the bundle: " + fetched.error().message);
      return;
    }
    auto rv = reg_.get_revision(in.app, in.revision);
    if (!rv) {
      fail_start(g, id, "revision " + in.revision + " is not registered here");
      return;
    }
    auto w = std::make_shared<worker>();
    w->id = id;
    w->group = key;
    w->job = agent::local_deployment{id,           in.app,
                                     in.group,     group_id(in.app, in.group),
                                     in.revision,  reg_.bundle_path(rv.value()),
                                     std::nullopt, in.ignore_stop_failures};
    if (!in.file_exists_behavior.empty()) {
      w->job.file_exists_override = agent::parse_file_exists_behavior(in.file_exists_behavior);
    }
    workers_[id] = w;
    spdlog::info("deployment {}: entering the update window on {}", id, self_);
    w->thread = std::thread([this, w] {
      event_sink sink([this, w](rec::event_progress ev) {
        env_.post([this, w, ev = std::move(ev)] {
          auto it = groups_.find(w->group);
          if (it == groups_.end() || shutting_down_) return;
          settle(*it->second, it->second->driver->on_event(w->id, ev));
          it->second->dirty.insert(w->id);
          refresh_views(*it->second);
        });
      });
      const agent::run_result result = exec_.run(w->job, sink, w->stop);
      const bool ok = result.status == host_status::succeeded;
      spdlog::info("deployment {}: {} on {}{}", w->id, ok ? "succeeded" : "ended", self_,
                   ok ? "" : ": " + result.message);
      env_.post([this, w, ok] {
        if (w->thread.joinable()) w->thread.join();
        workers_.erase(w->id);
        // A node shutting down reports nothing: after the restart the journal shows the run
        // was cut short (DEPLOYMENT_INTERRUPTED).
        if (shutting_down_) return;
        auto it = groups_.find(w->group);
        if (it == groups_.end()) return;
        const ro::execution_end end = ok               ? ro::execution_end::completed
                                      : w->stop.load() ? ro::execution_end::stopped
                                                       : ro::execution_end::failed;
        settle(*it->second, it->second->driver->on_execution_finished(w->id, end));
        it->second->dirty.insert(w->id);
        refresh_views(*it->second);
        maybe_auto_rollback(*it->second);
      });
    });
  });
  // Still downloading: the host shows the download as its DownloadBundle event meanwhile.
  if (fetching_.count(in.revision) != 0 || fetching_.count("?" + in.revision) != 0) {
    waiting_downloads_[in.revision].push_back(download_wait{key, id, entered_ms, -1});
  }
}

}  // namespace meshdeploy::deploy

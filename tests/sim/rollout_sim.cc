#include "tests/sim/rollout_sim.h"

#include "node/deploy/deployment_config.h"
#include "node/deploy/rollout/deployment_view.h"
#include "node/deploy/rollout/host_driver.h"
#include "node/deploy/rollout/planning.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <unordered_set>

namespace meshdeploy::sim {

namespace {

using namespace deploy::rollout;
using deploy::deployment_status;

const char* const app = "app";
const char* const group = "grp";
const std::vector<std::string> hook_events = {"ApplicationStop", "BeforeInstall", "AfterInstall",
                                              "ApplicationStart", "ValidateService"};

struct rec {
  enum kind { intent, approval, progress, stop, exclude } k = intent;
  std::shared_ptr<const intent_entry> in;
  records::approval_payload ap;
  records::progress_payload pr;
  std::uint64_t version = 0;
  records::stop_payload st;
  records::exclude_payload ex;
  std::string key;
  std::uint64_t hash = 0;  // of key: what nodes index by
};
using rec_ptr = std::shared_ptr<const rec>;

void set_key(rec& r, std::string key) {
  r.hash = std::hash<std::string>{}(key);
  r.key = std::move(key);
}

struct stored {
  rec_ptr r;
  std::int64_t at = 0;
  bool own = false;
};

struct node {
  std::string name;
  bool target = true;  // false: the observer
  bool alive = true;
  std::int64_t paused_until = 0;
  std::uint64_t incarnation = 0;
  std::unique_ptr<host_driver> driver;
  record_set observed{app, group};  // the observer's records (no driver)
  host_journal durable;
  std::optional<host_journal> unsynced;
  std::vector<stored> store;
  std::unordered_set<std::uint64_t> keys;     // rec::hash of every record held
  std::map<std::size_t, std::size_t> synced;  // peer -> prefix of its store known to be here
  // Execution.
  std::string exec;
  std::size_t exec_event = 0;
  bool exec_stop = false;
  int fail_at = -1;  // event index that fails, -1: none
  // Status per deployment last computed here (for "terminal never changes").
  std::map<std::string, deployment_status> last_status;
  // Restarted without its data dir and its journal: unsettled (the driver enters and votes
  // nothing) until it holds the same records as a peer it pulls from, or settle_after passed.
  bool lost_journal = false;
  std::int64_t settle_after = 0;
};

struct event {
  enum type {
    deliver,
    hook_start,
    hook_end,
    flush,
    tick,
    sync,
    crash,
    restart,
    partition_start,
    partition_end,
    submit,
    stop_op,
    exclude_op,
    checkpoint
  } t = deliver;
  std::int64_t at = 0;
  std::uint64_t seq = 0;
  std::size_t node = 0;
  std::size_t from = 0;
  rec_ptr r;
  std::uint64_t inc = 0;
  bool flag = false;
  std::string s;
};

struct later {
  bool operator()(const event& a, const event& b) const {
    return a.at != b.at ? a.at > b.at : a.seq > b.seq;
  }
};

std::string progress_key(const records::progress_payload& p, std::uint64_t v) {
  std::string k = fmt::format("p/{}/{}/{}/{}", p.deployment_id, p.host, v, p.phase);
  for (const auto& e : p.events) k += "/" + e.name + ":" + e.status;
  return k;
}

class simulation {
 public:
  explicit simulation(const rollout_sim_options& o) : o_(o), rng_(o.seed) {}

  rollout_sim_result run();

 private:
  std::int64_t uniform(std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng_);
  }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  void push(event e) {
    e.seq = seq_++;
    q_.push(std::move(e));
  }
  std::int64_t latency() {
    std::int64_t l = 0;
    for (int i = 0; i < o_.hops; ++i) l += o_.latency_base_ms + uniform(0, o_.latency_jitter_ms);
    return l;
  }
  bool faulty() const { return o_.faults && now_ < heal_at_; }
  // A partition from `e` (partition_start): random sides, or e.node alone when e.flag; it
  // heals after e.inc ms (at the latest 5 s after the fault window).
  void start_partition(const event& e) {
    if (partition_) return;
    partition_ = true;
    for (std::size_t i = 0; i < nodes_.size(); ++i) side_[i] = chance(0.5) ? 1 : 0;
    if (e.flag) {
      for (std::size_t i = 0; i < nodes_.size(); ++i) side_[i] = i == e.node ? 1 : 0;
    }
    event end;
    end.t = event::partition_end;
    end.at = std::min<std::int64_t>(now_ + static_cast<std::int64_t>(e.inc), heal_at_ + 5000);
    push(end);
  }
  bool partitioned(std::size_t a, std::size_t b) const {
    return partition_ && side_[a] != side_[b];
  }
  void violation(const std::string& what) {
    if (res_.violations.size() < 5) {
      res_.violations.push_back(fmt::format("seed {} t={}ms: {}", o_.seed, now_, what));
    }
  }

  void send(std::size_t from, std::size_t to, const rec_ptr& r, bool repair = false) {
    if (!nodes_[to].alive && !repair) return;
    if (faulty() && chance(loss_)) return;
    if (partitioned(from, to)) return;
    event e;
    e.t = event::deliver;
    e.at = now_ + latency();
    e.node = to;
    e.from = from;
    e.r = r;
    push(std::move(e));
  }
  void broadcast(std::size_t from, const rec_ptr& r) {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (i == from) continue;
      if (!o_.progress_to_all && r->k == rec::progress && nodes_[i].target) continue;
      send(from, i, r);
    }
  }
  // Stores `r` at node i and feeds it to its driver; returns true when new.
  bool accept(std::size_t i, const rec_ptr& r, bool own) {
    node& n = nodes_[i];
    if (!n.keys.insert(r->hash).second) return false;
    n.store.push_back({r, now_, own});
    feed(n, *r);
    return true;
  }
  void feed(node& n, const rec& r) {
    if (n.driver) {
      switch (r.k) {
        case rec::intent:
          n.driver->add_intent(r.in);  // shared: 10,000 hosts hold one copy
          break;
        case rec::approval:
          n.driver->add_approval(r.ap);
          break;
        case rec::progress:
          n.driver->add_progress(r.pr, r.version);
          break;
        case rec::stop:
          n.driver->add_stop(r.st);
          break;
        case rec::exclude:
          n.driver->add_exclude(r.ex);
          break;
      }
    } else {
      switch (r.k) {
        case rec::intent:
          n.observed.add_intent(r.in);
          break;
        case rec::approval:
          n.observed.add_approval(r.ap);
          break;
        case rec::progress:
          n.observed.add_progress(r.pr, r.version);
          break;
        case rec::stop:
          n.observed.add_stop(r.st);
          break;
        case rec::exclude:
          n.observed.add_exclude(r.ex);
          break;
      }
    }
  }
  const record_set& records_of(const node& n) const {
    return n.driver ? n.driver->records() : n.observed;
  }

  // Anti-entropy: node `to` gets from `from` what it lacks. The prefix of from's store already
  // known to be at `to` is skipped (stores only grow, until a crash rebuilds them).
  void pull(std::size_t to, std::size_t from) {
    node& x = nodes_[to];
    const auto& st = nodes_[from].store;
    std::size_t& cursor = x.synced[from];
    if (cursor > st.size()) cursor = 0;
    bool contiguous = true;
    for (std::size_t k = cursor; k < st.size(); ++k) {
      if (x.keys.count(st[k].r->hash) != 0) {
        if (contiguous) cursor = k + 1;
        continue;
      }
      contiguous = false;
      send(from, to, st[k].r);
    }
  }
  void apply(std::size_t i, const std::vector<action>& actions);
  void start_hook(std::size_t i);
  void end_hook(std::size_t i);
  void deliver(const event& e);
  void crash(std::size_t i);
  // `wipe`: without the data dir; `lose_journal` (with wipe): the host journal too.
  void restart(std::size_t i, bool wipe, bool lose_journal);
  // An unsettled node that now holds every record of `peer` (or waited long enough) settles.
  void maybe_settle(std::size_t i, std::size_t peer);
  // `cut_off`: the submitter was cut off just before it planned (it plans over itself alone).
  void submit(std::size_t via, const std::string& id, bool cut_off = false);
  void publish_operator(std::size_t via, rec_ptr r);
  void check_node(std::size_t i);
  void check_oos();
  void checkpoint();
  bool all_terminal(bool everywhere);
  std::size_t intents_alive() const;
  void schedule_faults();

  rollout_sim_options o_;
  std::mt19937_64 rng_;
  std::priority_queue<event, std::vector<event>, later> q_;
  std::uint64_t seq_ = 0;
  std::int64_t now_ = 0;
  std::int64_t heal_at_ = 0;
  double loss_ = 0;
  bool partition_ = false;
  std::vector<int> side_;
  std::vector<node> nodes_;  // targets first, then the observer
  std::size_t observer_ = 0;
  std::size_t n_hosts_ = 0;
  deploy::deployment_config config_;
  std::string config_name_;
  std::uint32_t k_ = 1;
  std::uint64_t next_id_ = 1;
  std::vector<std::string> ids_;
  // Ground truth.
  std::vector<bool> oos_, fenced_;
  std::set<std::pair<std::size_t, std::string>> entered_;
  std::set<std::size_t> journal_lost_;  // hosts restarted without their journal at least once
  std::map<std::size_t, std::string> last_entered_;
  std::map<std::size_t, std::int64_t> crash_time_;
  struct pause {
    std::size_t node;
    std::int64_t from, until;
  };
  std::vector<pause> pauses_;
  rollout_sim_result res_;
};

void simulation::apply(std::size_t i, const std::vector<action>& actions) {
  node& n = nodes_[i];
  static const bool trace = std::getenv("MESHDEPLOY_ROLLOUT_TRACE") != nullptr;
  for (const action& a : actions) {
    if (trace) {
      std::fprintf(stderr, "%lld %s kind=%d dep=%s sync=%d ap=%s->%s pr=%s/%s v=%llu\n",
                   static_cast<long long>(now_), n.name.c_str(), static_cast<int>(a.kind),
                   a.deployment.c_str(), a.sync, a.approval.parent.c_str(),
                   a.approval.child.c_str(), a.progress.deployment_id.c_str(),
                   a.progress.phase.c_str(), static_cast<unsigned long long>(a.version));
    }
    switch (a.kind) {
      case action_kind::prefetch:
        break;
      case action_kind::persist_journal:
        if (a.sync) {
          n.durable = a.journal;
          n.unsynced.reset();
        } else {
          n.unsynced = a.journal;
          event f;
          f.t = event::flush;
          f.at = now_ + 30;  // the OS writes it back a little later
          f.node = i;
          f.inc = n.incarnation;
          push(std::move(f));
        }
        break;
      case action_kind::publish_approval: {
        auto r = std::make_shared<rec>();
        r->k = rec::approval;
        r->ap = a.approval;
        set_key(*r,
                fmt::format("a/{}/{}/{}", a.approval.parent, a.approval.host, a.approval.child));
        n.keys.insert(r->hash);
        n.store.push_back({r, now_, true});
        broadcast(i, r);
        break;
      }
      case action_kind::publish_progress: {
        auto r = std::make_shared<rec>();
        r->k = rec::progress;
        r->pr = a.progress;
        r->version = a.version;
        set_key(*r, progress_key(a.progress, a.version));
        n.keys.insert(r->hash);
        n.store.push_back({r, now_, true});
        broadcast(i, r);
        break;
      }
      case action_kind::start_execution: {
        if (trace) {
          const record_set& rs = n.driver->records();
          const admission_state st = admit(rs);
          const gate_result g = gate(rs, st, a.deployment, n.name);
          std::string order;
          for (const auto& t : rs.intent(a.deployment)->intent.targets) {
            order += t + (out_of_service_before(rs, st, a.deployment, t) ? "*" : "") + "," +
                     std::to_string(static_cast<int>(fact_of(rs, a.deployment, t).outcome)) + " ";
          }
          for (const auto& c : st.chain) {
            order += "| " + c + ":";
            for (const auto& t : rs.intent(c)->intent.targets) {
              const progress_entry* pe = rs.progress(c, t);
              order += " " + t + "=" + (pe ? pe->progress.phase : std::string("-"));
            }
          }
          std::fprintf(stderr, "  gate %s: decision %d blockers %zu order %s parent %s\n",
                       n.name.c_str(), static_cast<int>(g.decision), g.blockers.size(),
                       order.c_str(), st.parent_of.at(a.deployment).c_str());
        }
        ++res_.enters;
        if (!entered_.insert({i, a.deployment}).second) {
          // The documented limit of a lost journal: its "entered" record reached nobody, so
          // nothing can tell the host it entered before. Anything else is a violation.
          bool told = false;
          for (std::size_t j = 0; j < nodes_.size() && !told; ++j) {
            told = j != i && records_of(nodes_[j]).progress(a.deployment, n.name) != nullptr;
          }
          if (told || journal_lost_.count(i) == 0) {
            violation(fmt::format("{} entered {} twice", n.name, a.deployment));
          } else {
            ++res_.reentries_unknowable;
          }
        }
        oos_[i] = true;
        fenced_[i] = false;
        last_entered_[i] = a.deployment;
        n.exec = a.deployment;
        n.exec_event = 0;
        n.exec_stop = false;
        n.fail_at = chance(o_.hook_fail)
                        ? static_cast<int>(uniform(0, static_cast<int>(hook_events.size()) - 1))
                        : -1;
        event h;
        h.t = event::hook_start;
        h.at = now_ + 1;
        h.node = i;
        h.inc = n.incarnation;
        push(std::move(h));
        break;
      }
      case action_kind::stop_execution:
        n.exec_stop = true;
        break;
      case action_kind::republish_intent: {
        auto r = std::make_shared<rec>();
        r->k = rec::intent;
        r->in = make_intent_entry(a.intent, a.at);
        set_key(*r, "i/" + a.deployment);
        n.keys.insert(r->hash);
        n.store.push_back({r, now_, true});
        broadcast(i, r);
        break;
      }
    }
  }
}

void simulation::start_hook(std::size_t i) {
  node& n = nodes_[i];
  records::event_progress e;
  e.name = hook_events[n.exec_event];
  e.status = "InProgress";
  e.start_ms = now_;
  const std::string id = n.exec;
  apply(i, n.driver->on_event(id, e));
  event h;
  h.t = event::hook_end;
  h.at = now_ + uniform(o_.hook_min_ms, o_.hook_max_ms);
  h.node = i;
  h.inc = n.incarnation;
  push(std::move(h));
}

void simulation::end_hook(std::size_t i) {
  node& n = nodes_[i];
  const std::string id = n.exec;
  const bool ok = static_cast<int>(n.exec_event) != n.fail_at;
  records::event_progress e;
  e.name = hook_events[n.exec_event];
  e.status = ok ? "Succeeded" : "Failed";
  e.end_ms = now_;
  if (!ok) {
    e.error_code = "ScriptFailed";
    e.script = "scripts/" + e.name + ".sh";
    e.message = "exit status 1";
  }
  if (ok && e.name == "ValidateService") oos_[i] = false;  // really healthy again
  apply(i, n.driver->on_event(id, e));
  const bool last = n.exec_event + 1 == hook_events.size();
  if (!ok || n.exec_stop || last) {
    const execution_end end = !ok    ? execution_end::failed
                              : last ? execution_end::completed
                                     : execution_end::stopped;
    n.exec.clear();
    apply(i, n.driver->on_execution_finished(id, end));
    return;
  }
  ++n.exec_event;
  event h;
  h.t = event::hook_start;
  h.at = now_;
  h.node = i;
  h.inc = n.incarnation;
  push(std::move(h));
}

void simulation::deliver(const event& e) {
  node& n = nodes_[e.node];
  if (!n.alive || partitioned(e.from, e.node)) return;
  ++res_.deliveries;
  if (!accept(e.node, e.r, false)) return;
  if (n.driver) apply(e.node, n.driver->step());
}

void simulation::crash(std::size_t i) {
  node& n = nodes_[i];
  if (!n.alive) return;
  n.alive = false;
  ++n.incarnation;
  n.exec.clear();  // the hook's processes die with it; the host stays out of service
  n.unsynced.reset();
  n.driver.reset();
  n.last_status.clear();  // its record set shrinks: "never changes" starts afresh
  crash_time_[i] = now_;
  for (auto& x : nodes_) {
    if (x.driver) {
      std::set<std::string> dead;
      for (const auto& y : nodes_) {
        if (!y.alive) dead.insert(y.name);
      }
      x.driver->set_dead(dead);
    }
  }
}

void simulation::maybe_settle(std::size_t i, std::size_t peer) {
  node& x = nodes_[i];
  if (!x.alive || !x.driver || !x.lost_journal) return;
  bool holds_all = now_ >= x.settle_after;
  if (!holds_all && peer != i && nodes_[peer].alive && !partitioned(i, peer)) {
    // The node's rule: its records match the peer's (equal sets, as equal digests), not a
    // superset of a peer that knows little (another wiped node: seed 2713).
    holds_all = !nodes_[peer].store.empty() && nodes_[peer].keys.size() == x.keys.size();
    for (const auto& s : nodes_[peer].store) {
      if (x.keys.count(s.r->hash) == 0) {
        holds_all = false;
        break;
      }
    }
  }
  if (!holds_all) return;
  if (std::getenv("MESHDEPLOY_ROLLOUT_TRACE") != nullptr) {
    std::fprintf(stderr, "%lld %s settles (%s, from %s)\n", static_cast<long long>(now_),
                 x.name.c_str(), now_ >= x.settle_after ? "timeout" : "holds a peer's records",
                 nodes_[peer].name.c_str());
  }
  x.lost_journal = false;
  x.driver->set_settled(true);
  apply(i, x.driver->step());
}

void simulation::restart(std::size_t i, bool wipe, bool lose_journal) {
  node& n = nodes_[i];
  if (n.alive) return;
  if (wipe && lose_journal) {
    n.durable = {};
    n.unsynced.reset();
  }
  std::vector<stored> kept;
  if (!wipe) {
    for (auto& s : n.store) {
      // Peers' records are written buffered: the newest may be lost with the process.
      if (s.own || s.at + 200 <= crash_time_[i]) kept.push_back(s);
    }
  }
  n.store.clear();
  n.keys.clear();
  n.synced.clear();
  for (auto& other : nodes_) other.synced.erase(i);  // its store was rebuilt
  n.alive = true;
  driver_options opts;
  opts.progress_deadline_ms = o_.progress_deadline_ms;
  opts.mutations = o_.mutations;
  n.driver = std::make_unique<host_driver>(n.name, app, group, n.durable, opts);
  // Unsettled until settled, across restarts (the node's marker file in the data dir).
  n.lost_journal = (wipe && lose_journal) || n.lost_journal;
  if (std::getenv("MESHDEPLOY_ROLLOUT_TRACE") != nullptr) {
    std::fprintf(stderr, "%lld %s restarts%s%s\n", static_cast<long long>(now_), n.name.c_str(),
                 wipe && lose_journal ? " without data dir and journal"
                 : wipe               ? " without data dir"
                                      : "",
                 n.lost_journal ? " (unsettled)" : "");
  }
  if (wipe && lose_journal) {
    journal_lost_.insert(i);
    ++res_.journals_lost;
  }
  if (n.lost_journal) {
    n.driver->set_settled(false);
    n.settle_after = now_ + 30'000;  // the node's --catch-up-delay
  }
  n.driver->on_tick(now_);
  for (auto& s : kept) accept(i, s.r, s.own);
  apply(i, n.driver->on_recovered());
  std::set<std::string> dead;
  for (const auto& y : nodes_) {
    if (!y.alive) dead.insert(y.name);
  }
  for (auto& x : nodes_) {
    if (x.driver) x.driver->set_dead(dead);
  }
}

void simulation::publish_operator(std::size_t via, rec_ptr r) {
  accept(via, r, true);
  broadcast(via, r);
  if (nodes_[via].driver) apply(via, nodes_[via].driver->step());
}

void simulation::submit(std::size_t via, const std::string& id, bool cut_off) {
  if (!nodes_[via].alive) {
    for (std::size_t j = 0; j < n_hosts_; ++j) {
      if (nodes_[j].alive) {
        via = j;
        break;
      }
    }
    if (!nodes_[via].alive) return;
  }
  const record_set& rs = records_of(nodes_[via]);
  std::vector<std::string> hosts;
  for (std::size_t j = 0; j < n_hosts_; ++j) {
    if (!(o_.plan_over_view || cut_off) || !partitioned(via, j)) {
      hosts.push_back(nodes_[j].name);
    }
  }
  records::intent_payload in;
  in.deployment_id = id;
  in.app = app;
  in.group = group;
  in.revision = "rev-" + id;
  in.config = config_name_;
  target_plan plan = plan_targets(rs, admit(rs), hosts, id);
  // As the plan route: members the submitter cannot reach are still listed by SWIM (dead or
  // suspect, not yet forgotten) and join the electorate.
  std::set<std::string> electorate(plan.electorate.begin(), plan.electorate.end());
  for (std::size_t j = 0; j < n_hosts_; ++j) {
    if (std::find(plan.targets.begin(), plan.targets.end(), nodes_[j].name) == plan.targets.end()) {
      electorate.insert(nodes_[j].name);
    }
  }
  in.targets = std::move(plan.targets);
  if (!o_.mutations.plan_without_electorate)
    in.electorate.assign(electorate.begin(), electorate.end());
  in.max_out_of_service = k_;
  in.creator = "sim";
  auto r = std::make_shared<rec>();
  r->k = rec::intent;
  r->in = make_intent_entry(std::move(in), now_);
  set_key(*r, "i/" + id);
  if (res_.first_submit_ms == 0) res_.first_submit_ms = now_;
  ids_.push_back(id);
  publish_operator(via, r);
}

void simulation::check_node(std::size_t i) {
  node& n = nodes_[i];
  if (!n.alive) return;
  const record_set& rs = records_of(n);
  const admission_state s = admit(rs);
  for (const auto& [id, e] : rs.intents()) {
    const deployment_status st = judge(rs, s, id).status;
    auto [it, fresh] = n.last_status.try_emplace(id, st);
    if (!fresh && it->second != st) {
      if (deploy::is_terminal(it->second)) {
        violation(fmt::format("{} saw {} go from {} to {}", n.name, id,
                              deploy::to_string(it->second), deploy::to_string(st)));
      }
      it->second = st;
    }
  }
}

void simulation::check_oos() {
  std::size_t out = 0;
  for (std::size_t i = 0; i < n_hosts_; ++i) out += (oos_[i] && !fenced_[i]) ? 1 : 0;
  res_.max_out_of_service = std::max(res_.max_out_of_service, out);
  if (out > k_) {
    std::string who;
    for (std::size_t i = 0; i < n_hosts_; ++i) {
      if (oos_[i] && !fenced_[i]) {
        who +=
            fmt::format(" {}({})", nodes_[i].name, last_entered_.count(i) ? last_entered_[i] : "?");
      }
    }
    violation(fmt::format("{} hosts out of service, K={}:{}", out, k_, who));
  }
}

void simulation::checkpoint() {
  // Equal record sets give equal statuses.
  std::map<std::uint64_t, std::pair<std::size_t, std::map<std::string, deployment_status>>> seen;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].alive) continue;
    const record_set& rs = records_of(nodes_[i]);
    const admission_state s = admit(rs);
    std::map<std::string, deployment_status> st;
    for (const auto& [id, e] : rs.intents()) st[id] = judge(rs, s, id).status;
    auto [it, fresh] = seen.try_emplace(rs.digest(), i, st);
    if (!fresh && records_of(nodes_[it->second.first]) == rs && it->second.second != st) {
      violation(fmt::format("{} and {} hold equal records but compute different statuses",
                            nodes_[it->second.first].name, nodes_[i].name));
    }
  }
}

std::size_t simulation::intents_alive() const {
  // An intent whose only copy died with a wiped submitter never existed for the cluster.
  std::set<std::string> ids;
  for (const auto& n : nodes_) {
    for (const auto& [id, e] : records_of(n).intents()) ids.insert(id);
  }
  return ids.size();
}

bool simulation::all_terminal(bool everywhere) {
  const std::size_t want = intents_alive();
  if (want == 0) return true;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!everywhere && i != observer_) continue;
    const record_set& rs = records_of(nodes_[i]);
    if (rs.intents().size() != want) return false;
    const admission_state s = admit(rs);
    for (const auto& [id, e] : rs.intents()) {
      if (!deploy::is_terminal(judge(rs, s, id).status)) return false;
    }
  }
  return true;
}

void simulation::schedule_faults() {
  const std::int64_t w = o_.fault_window_ms;
  // Crashes (some mid-hook), each followed by a restart, a third without the data dir.
  const int crashes = static_cast<int>(uniform(0, 3));
  for (int c = 0; c < crashes; ++c) {
    event e;
    e.t = event::crash;
    e.at = uniform(0, w);
    e.node = static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(n_hosts_) - 1));
    e.flag = chance(0.5);  // prefer a host that is running a hook
    push(e);
  }
  // Partitions, one at a time.
  std::int64_t t = uniform(0, w / 4);
  while (t < w) {
    if (chance(0.6)) {
      event e;
      e.t = event::partition_start;
      e.at = t;
      e.inc = static_cast<std::uint64_t>(uniform(300, 5000));  // duration
      push(e);
    }
    t += uniform(2000, 8000);
  }
  // Long pauses (SIGSTOP).
  const int pauses = static_cast<int>(uniform(0, 2));
  for (int p = 0; p < pauses; ++p) {
    const auto i = static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(n_hosts_) - 1));
    const std::int64_t at = uniform(0, w);
    nodes_[i].paused_until = 0;
    pauses_.push_back({i, at, at + uniform(1000, 10000)});
  }
}

rollout_sim_result simulation::run() {
  n_hosts_ = o_.hosts != 0 ? o_.hosts : static_cast<std::size_t>(uniform(3, 9));
  static const char* const configs[] = {"OneAtATime", "HalfAtATime", "AllAtOnce", "Custom"};
  config_name_ = !o_.config.empty() ? o_.config : configs[uniform(0, 3)];
  const auto n = static_cast<std::uint32_t>(n_hosts_);
  if (config_name_ == "Custom") {
    const std::uint32_t k = o_.custom_k != 0
                                ? o_.custom_k
                                : static_cast<std::uint32_t>(uniform(1, std::max(1u, n - 1)));
    config_ =
        deploy::deployment_config{"Custom", deploy::min_healthy_type::host_count, n - k, false};
  } else {
    config_ = *deploy::find_builtin_config(config_name_);
  }
  k_ = deploy::max_out_of_service(config_, n);
  res_.k = k_;
  res_.hosts = n_hosts_;
  loss_ = o_.loss >= 0 ? o_.loss : std::uniform_real_distribution<double>(0, 0.2)(rng_);
  heal_at_ = o_.faults ? o_.fault_window_ms : 0;
  oos_.assign(n_hosts_, false);
  fenced_.assign(n_hosts_, false);
  side_.assign(n_hosts_ + 1, 0);
  nodes_.resize(n_hosts_ + 1);
  observer_ = n_hosts_;
  driver_options opts;
  opts.progress_deadline_ms = o_.progress_deadline_ms;
  opts.mutations = o_.mutations;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    node& x = nodes_[i];
    x.name = i == observer_ ? "observer" : fmt::format("h{}", i);
    x.target = i != observer_;
    if (x.target)
      x.driver = std::make_unique<host_driver>(x.name, app, group, host_journal{}, opts);
  }
  // Submissions: sequential ones at random times, maybe two at once through two nodes.
  const int deployments = o_.deployments != 0 ? o_.deployments : static_cast<int>(uniform(1, 3));
  std::int64_t t = 0;
  for (int d = 0; d < deployments; ++d) {
    event e;
    e.t = event::submit;
    e.at = t;
    e.node = static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(n_hosts_) - 1));
    e.s = fmt::format("d-{}", next_id_++);
    e.flag = o_.faults && chance(0.3);  // isolate the submitter right away
    push(e);
    if (o_.faults && chance(0.3)) {  // a concurrent submission through another node
      event c = e;
      c.node = (e.node + 1) % n_hosts_;
      c.s = fmt::format("d-{}", next_id_++);
      c.flag = false;
      push(c);
    }
    t += uniform(0, o_.faults ? o_.fault_window_ms / 2 : 2000);
  }
  if (o_.faults) {
    schedule_faults();
    const int stops = chance(0.2) ? 1 : 0;
    for (int s = 0; s < stops; ++s) {
      event e;
      e.t = event::stop_op;
      e.at = uniform(0, o_.fault_window_ms);
      push(e);
    }
  }
  for (std::size_t i = 0; i < n_hosts_; ++i) {
    event e;
    e.t = event::tick;
    e.at = uniform(0, 999);
    e.node = i;
    push(e);
    if (o_.faults) {
      event s;
      s.t = event::sync;
      s.at = uniform(0, 299);
      s.node = i;
      push(s);
    }
  }
  event cp;
  cp.t = event::checkpoint;
  cp.at = o_.faults ? 1000 : 1;
  push(cp);

  const std::int64_t quiet_from = heal_at_ + 10'000;  // every fault healed by then
  // Bounded: every event is processed once; the horizon stops runaway runs.
  while (!q_.empty() && res_.violations.empty()) {
    event e = q_.top();
    q_.pop();
    if (e.at > o_.horizon_ms) break;
    now_ = e.at;
    ++res_.events;
    // A paused node holds its input until it resumes.
    if (e.t == event::deliver || e.t == event::hook_start || e.t == event::hook_end ||
        e.t == event::tick || e.t == event::sync) {
      bool held = false;
      for (const auto& p : pauses_) {
        if (p.node == e.node && now_ >= p.from && now_ < p.until) {
          e.at = p.until;
          push(e);
          held = true;
          break;
        }
      }
      if (held) continue;
    }
    std::optional<std::size_t> dirty;
    switch (e.t) {
      case event::deliver:
        deliver(e);
        dirty = e.node;
        break;
      case event::hook_start:
        if (nodes_[e.node].alive && e.inc == nodes_[e.node].incarnation &&
            !nodes_[e.node].exec.empty()) {
          start_hook(e.node);
          dirty = e.node;
        }
        break;
      case event::hook_end:
        if (nodes_[e.node].alive && e.inc == nodes_[e.node].incarnation &&
            !nodes_[e.node].exec.empty()) {
          end_hook(e.node);
          dirty = e.node;
        }
        break;
      case event::flush:
        if (e.inc == nodes_[e.node].incarnation && nodes_[e.node].unsynced) {
          nodes_[e.node].durable = *nodes_[e.node].unsynced;
          nodes_[e.node].unsynced.reset();
        }
        break;
      case event::tick: {
        node& x = nodes_[e.node];
        if (x.alive && x.driver) {
          apply(e.node, x.driver->on_tick(now_));
          dirty = e.node;
        }
        e.at = now_ + 1000;
        push(e);
        break;
      }
      case event::sync: {
        // Pull anti-entropy from one random reachable peer (or the observer).
        node& x = nodes_[e.node];
        if (x.alive) {
          const auto j =
              static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(nodes_.size()) - 1));
          maybe_settle(e.node, j);  // what earlier pulls brought
          if (j != e.node && nodes_[j].alive && !partitioned(j, e.node)) pull(e.node, j);
          // The observer pulls too, so it ends up holding every record.
          if (!partitioned(observer_, e.node)) pull(observer_, e.node);
        }
        e.at = now_ + 300;
        if (now_ < quiet_from + 120'000) push(e);
        break;
      }
      case event::crash: {
        std::size_t i = e.node;
        if (e.flag) {  // a host inside a hook, if any
          for (std::size_t j = 0; j < n_hosts_; ++j) {
            if (nodes_[j].alive && !nodes_[j].exec.empty()) {
              i = j;
              break;
            }
          }
        }
        if (!nodes_[i].alive) break;
        const std::string was = nodes_[i].exec;
        crash(i);
        event r;
        r.t = event::restart;
        r.at = now_ + uniform(500, 8000);
        r.node = i;
        r.flag = chance(0.3);                        // without the data dir
        if (r.flag && chance(0.5)) r.s = "journal";  // and without the host journal
        push(r);
        // Sometimes an operator fences the dead host off the deployment it was running,
        // when no final record of it exists anywhere (it is down, not done).
        if (!was.empty() && chance(0.3)) {
          event x;
          x.t = event::exclude_op;
          x.at = now_ + uniform(100, 3000);
          x.node = i;
          x.s = was;
          push(x);
        }
        break;
      }
      case event::restart:
        restart(e.node, e.flag, e.s == "journal");
        dirty = e.node;
        break;
      case event::partition_start:
        start_partition(e);
        break;
      case event::partition_end:
        partition_ = false;
        break;
      case event::submit:
        if (e.flag && !partition_) {
          // Isolate the submitter as it submits: the intent is stuck there until heal. Half
          // the time (planning over views) it is cut off just before it plans, so it plans
          // over itself alone.
          event p;
          p.t = event::partition_start;
          p.at = now_;
          p.node = e.node;
          p.flag = true;
          p.inc = static_cast<std::uint64_t>(uniform(1000, 6000));
          if (o_.plan_over_view && chance(0.5)) {
            start_partition(p);
            submit(e.node, e.s, true);
            break;
          }
          push(p);
        }
        submit(e.node, e.s);
        break;
      case event::stop_op: {
        if (ids_.empty()) break;
        const std::string id =
            ids_[static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(ids_.size()) - 1))];
        const auto via =
            static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(n_hosts_) - 1));
        if (!nodes_[via].alive) break;
        auto r = std::make_shared<rec>();
        r->k = rec::stop;
        r->st = records::stop_payload{id, app, group, "stopped by the operator"};
        set_key(*r, "s/" + id);
        publish_operator(via, r);
        break;
      }
      case event::exclude_op: {
        if (nodes_[e.node].alive) break;  // it came back: nothing to fence
        bool final_somewhere = false;
        for (const auto& x : nodes_) {
          const progress_entry* p = records_of(x).progress(e.s, nodes_[e.node].name);
          if (p != nullptr && is_final_phase(p->progress.phase)) final_somewhere = true;
        }
        if (final_somewhere) break;
        std::size_t via = n_hosts_;
        for (std::size_t j = 0; j < n_hosts_; ++j) {
          if (nodes_[j].alive) via = j;
        }
        if (via == n_hosts_) break;
        auto r = std::make_shared<rec>();
        r->k = rec::exclude;
        r->ex = records::exclude_payload{e.s, app, group, nodes_[e.node].name};
        set_key(*r, fmt::format("x/{}/{}", e.s, nodes_[e.node].name));
        if (last_entered_.count(e.node) && last_entered_[e.node] == e.s) fenced_[e.node] = true;
        publish_operator(via, r);
        break;
      }
      case event::checkpoint:
        if (o_.check_every_step) checkpoint();
        if (res_.all_terminal_ms < 0 && !ids_.empty() && all_terminal(false)) {
          res_.all_terminal_ms = now_;
          // Hosts that get no progress of others cannot all see the end: the observer's view
          // is the measurement.
          if (!o_.progress_to_all) goto done;
        }
        if (now_ >= quiet_from && all_terminal(true)) {
          res_.all_terminal_ms = res_.all_terminal_ms < 0 ? now_ : res_.all_terminal_ms;
          goto done;
        }
        e.at = now_ + (o_.faults ? 1000 : 5);
        push(e);
        break;
    }
    if (o_.check_every_step) {
      check_oos();
      if (dirty) check_node(*dirty);
    }
  }
done:
  if (res_.violations.empty() && !all_terminal(o_.progress_to_all)) {
    std::string open;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const record_set& rs = records_of(nodes_[i]);
      const admission_state s = admit(rs);
      for (const auto& [id, e] : rs.intents()) {
        const auto st = judge(rs, s, id).status;
        if (!deploy::is_terminal(st)) {
          open += fmt::format(" {}:{}={}", nodes_[i].name, id, deploy::to_string(st));
        }
      }
      if (rs.intents().size() != intents_alive()) {
        open += fmt::format(" {}:missing-intents", nodes_[i].name);
      }
    }
    violation("not every deployment is terminal at every node after the faults healed:" + open);
  }
  {
    const record_set& rs = records_of(nodes_[observer_]);
    const admission_state s = admit(rs);
    for (const auto& [id, e] : rs.intents()) res_.final_status[id] = judge(rs, s, id).status;
  }
  return res_;
}

}  // namespace

rollout_sim_result run_rollout_sim(const rollout_sim_options& options) {
  simulation s(options);
  return s.run();
}

}  // namespace meshdeploy::sim

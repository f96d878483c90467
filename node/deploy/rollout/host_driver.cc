#include "node/deploy/rollout/host_driver.h"

#include "node/agent/lifecycle_event.h"
#include "node/deploy/rollout/deployment_view.h"

#include <fmt/format.h>

#include <algorithm>

namespace meshdeploy::deploy::rollout {

namespace {

bool targets_host(const intent_entry& e, const std::string& host) {
  return e.position_of(host) >= 0;
}

// `events` followed by every lifecycle event not in it, as Skipped; the first of those carries
// the reason (deployment_view.h reads it from there).
std::vector<records::event_progress> with_skipped_rest(std::vector<records::event_progress> events,
                                                       const std::string& reason,
                                                       const std::string& message) {
  bool marked = false;
  for (agent::lifecycle_event e : agent::lifecycle_order()) {
    const std::string name(agent::to_string(e));
    const bool seen = std::any_of(events.begin(), events.end(),
                                  [&](const records::event_progress& x) { return x.name == name; });
    if (seen) continue;
    records::event_progress x;
    x.name = name;
    x.status = "Skipped";
    if (!marked) {
      x.error_code = reason;
      x.message = message;
      marked = true;
    }
    events.push_back(std::move(x));
  }
  return events;
}

}  // namespace

host_driver::host_driver(std::string host, std::string app, std::string group, host_journal journal,
                         driver_options options)
    : host_(std::move(host)),
      rs_(std::move(app), std::move(group)),
      journal_(std::move(journal)),
      options_(options) {}

bool host_driver::add_intent(const records::intent_payload& p, unix_ms created) {
  return rs_.add_intent(p, created);
}
bool host_driver::add_intent(std::shared_ptr<const intent_entry> e) {
  return rs_.add_intent(std::move(e));
}
bool host_driver::add_approval(const records::approval_payload& p) { return rs_.add_approval(p); }
bool host_driver::add_progress(const records::progress_payload& p, std::uint64_t version) {
  if (!rs_.add_progress(p, version)) return false;
  touch(p.deployment_id);
  return true;
}
bool host_driver::add_stop(const records::stop_payload& p) { return rs_.add_stop(p); }
bool host_driver::add_exclude(const records::exclude_payload& p) {
  if (!rs_.add_exclude(p)) return false;
  touch(p.deployment_id);
  return true;
}

void host_driver::touch(const std::string& id) { last_change_[id] = now_; }

void host_driver::persist(std::vector<action>& out, bool sync) {
  action a;
  a.kind = action_kind::persist_journal;
  a.journal = journal_;
  a.sync = sync;
  out.push_back(std::move(a));
}

void host_driver::publish(std::vector<action>& out, records::progress_payload p,
                          std::uint64_t version) {
  rs_.add_progress(p, version);
  touch(p.deployment_id);
  action a;
  a.kind = action_kind::publish_progress;
  a.deployment = p.deployment_id;
  a.progress = std::move(p);
  a.version = version;
  out.push_back(std::move(a));
}

void host_driver::finish(std::vector<action>& out, const std::string& id, const std::string& phase,
                         std::vector<records::event_progress> events) {
  // The journal holds the final record before it exists anywhere else, so a crash in between
  // (or a wiped data dir later) republishes exactly the same record, never a different one.
  records::progress_payload p{id, host_, phase, std::move(events)};
  journal_.finished[id] = p;
  persist(out);
  publish(out, std::move(p), final_progress_version);
}

void host_driver::skip(std::vector<action>& out, const std::string& id, const std::string& reason,
                       const std::string& message, std::vector<records::event_progress> events) {
  finish(out, id, phase_skipped, with_skipped_rest(std::move(events), reason, message));
}

void host_driver::interrupted(std::vector<action>& out, const std::string& id,
                              const interruption* why) {
  std::vector<records::event_progress> events;
  if (const progress_entry* p = rs_.progress(id, host_)) events = p->progress.events;
  const std::string prefix(interrupted_prefix);
  auto cut_short = [&](records::event_progress& e, const std::string& message) {
    e.status = "Failed";
    e.error_code = "UnknownError";
    e.message = prefix + message;
  };
  bool marked = false;
  if (why != nullptr && !why->event.empty()) {
    // The agent knows which event ran: mark it (it was never reported, progress goes out
    // when an event finishes).
    auto it = std::find_if(events.begin(), events.end(),
                           [&](const records::event_progress& e) { return e.name == why->event; });
    if (it == events.end()) {
      records::event_progress e;
      e.name = why->event;
      events.push_back(e);
      it = events.end() - 1;
    }
    cut_short(*it, why->message);
    it->script = why->script;
    marked = true;
  }
  for (auto& e : events) {
    if (e.status == "InProgress") {
      cut_short(e, "the host restarted while this event ran; it was not run again");
      marked = true;
    }
  }
  if (!marked) {
    // Cut short between events (or before the first): the first event that never ran
    // carries the account, the rest are Skipped.
    const std::string message = why != nullptr && !why->message.empty()
                                    ? why->message
                                    : "the host restarted inside the update window";
    const std::size_t reported = events.size();
    events = with_skipped_rest(std::move(events), "", "");
    cut_short(events[std::min(reported, events.size() - 1)], message);
  } else {
    events = with_skipped_rest(std::move(events), "", "");
  }
  finish(out, id, phase_failed, std::move(events));
}

std::vector<action> host_driver::on_recovered(const std::map<std::string, interruption>& why) {
  std::vector<action> out;
  for (const auto& id : journal_.entered) {
    if (journal_.finished.count(id) != 0) continue;
    auto w = why.find(id);
    interrupted(out, id, w == why.end() ? nullptr : &w->second);
  }
  for (const auto& [id, final_record] : journal_.finished) {
    const progress_entry* p = rs_.progress(id, host_);
    if (p != nullptr && is_final_phase(p->progress.phase)) continue;
    publish(out, final_record, final_progress_version);
  }
  for (const auto& [id, stored] : journal_.approved_intents) {
    if (rs_.intent(id) != nullptr) continue;
    rs_.add_intent(stored.first, stored.second);
    action x;
    x.kind = action_kind::republish_intent;
    x.deployment = id;
    x.intent = stored.first;
    x.at = stored.second;
    out.push_back(std::move(x));
  }
  for (const auto& [parent, child] : journal_.approved) {
    const auto& ap = rs_.approvals();
    auto it = ap.find(parent);
    if (it != ap.end() && it->second.count(host_) != 0) continue;
    records::approval_payload a{rs_.app(), rs_.group(), parent, child, host_};
    rs_.add_approval(a);
    action x;
    x.kind = action_kind::publish_approval;
    x.approval = std::move(a);
    out.push_back(std::move(x));
  }
  auto more = step();
  out.insert(out.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  return out;
}

std::vector<action> host_driver::on_event(const std::string& deployment,
                                          const records::event_progress& e) {
  std::vector<action> out;
  if (deployment != executing_) return out;
  auto it = std::find_if(events_.begin(), events_.end(),
                         [&](const records::event_progress& x) { return x.name == e.name; });
  if (it == events_.end()) {
    events_.push_back(e);
  } else {
    *it = e;
  }
  const bool validate = e.name == "ValidateService";
  if (validate && e.status == "Succeeded") validate_passed_ = true;
  if (validate && e.status == "InProgress" && options_.mutations.resolve_before_validate &&
      journal_.finished.count(deployment) == 0) {
    // PLANTED BUG: frees the token while ValidateService still runs.
    finish(out, deployment, phase_resolved, events_);
    return out;
  }
  if (journal_.finished.count(deployment) != 0) return out;
  ++updates_;
  publish(out, records::progress_payload{deployment, host_, phase_entered, events_}, 1 + updates_);
  return out;
}

std::vector<action> host_driver::on_execution_finished(const std::string& deployment,
                                                       execution_end end) {
  std::vector<action> out;
  if (deployment != executing_) return out;
  executing_.clear();
  if (journal_.finished.count(deployment) == 0) {
    if (end == execution_end::completed && validate_passed_) {
      finish(out, deployment, phase_resolved, events_);
    } else if (end == execution_end::stopped) {
      const bool excluded = rs_.excluded(deployment, host_);
      skip(out, deployment, excluded ? skip_excluded : skip_stopped,
           excluded ? "excluded by an operator while running" : "stopped while running", events_);
    } else {
      finish(out, deployment, phase_failed, events_);
    }
  }
  events_.clear();
  auto more = step();
  out.insert(out.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  return out;
}

std::vector<action> host_driver::on_tick(unix_ms now) {
  now_ = now;
  return step();
}

std::vector<action> host_driver::step() {
  std::vector<action> out;
  adm_ = admit(rs_);

  // Prefetch: as soon as an intent naming this host is seen and may still run.
  for (const auto& [id, e] : rs_.intents()) {
    if (prefetched_.count(id) != 0 || journal_.finished.count(id) != 0 ||
        adm_.lost_to.count(id) != 0 || !targets_host(*e, host_)) {
      continue;
    }
    prefetched_.insert(id);
    if (rs_.stop(id) != nullptr) continue;
    action a;
    a.kind = action_kind::prefetch;
    a.deployment = id;
    a.revision = e->intent.revision;
    out.push_back(std::move(a));
  }

  // Running: only a stop or this host's exclusion matters until the agent reports the end.
  if (!executing_.empty()) {
    if (!stop_requested_ && (rs_.stop(executing_) != nullptr || rs_.excluded(executing_, host_))) {
      stop_requested_ = true;
      action a;
      a.kind = action_kind::stop_execution;
      a.deployment = executing_;
      out.push_back(std::move(a));
    }
    return out;
  }

  // Admission: approve the next child of the newest admitted deployment once that is over.
  const std::string parent = adm_.latest();
  const bool revote = options_.mutations.revote_after_lost_journal;
  if (journal_.approved.count(parent) == 0 && !revote) {
    // Our own approval for this parent, back from peers after a lost journal: adopt it. A
    // second one could name another child (a conflict that splits the group's views).
    const auto& ap = rs_.approvals();
    if (auto it = ap.find(parent); it != ap.end()) {
      if (auto mine = it->second.find(host_); mine != it->second.end()) {
        journal_.approved[parent] = mine->second;
        persist(out);
      }
    }
  }
  // Unsettled (records from before an empty data dir may still come), it signs no approval:
  // its own earlier approvals may be among what has not arrived yet.
  if (journal_.approved.count(parent) == 0 && (settled_ || revote)) {
    bool parent_over = parent.empty();
    if (!parent_over && rs_.intent(parent) != nullptr) {
      parent_over = is_terminal(judge(rs_, adm_, parent).status);
      // This host must also be done with it (a failed deployment may still run here).
      if (targets_host(*rs_.intent(parent), host_) && journal_.entered.count(parent) != 0 &&
          journal_.finished.count(parent) == 0) {
        parent_over = false;
      }
    }
    if (parent_over) {
      if (auto a = next_approval(rs_, adm_, host_)) {
        journal_.approved[parent] = a->child;
        const intent_entry* ie = rs_.intent(a->child);
        journal_.approved_intents[a->child] = {ie->intent, ie->created};
        persist(out);
        rs_.add_approval(*a);
        action x;
        x.kind = action_kind::publish_approval;
        x.approval = std::move(*a);
        out.push_back(std::move(x));
        adm_ = admit(rs_);
      }
    }
  }

  // The gate, for admitted deployments in chain order; at most one runs at a time.
  for (const auto& id : adm_.chain) {
    const intent_entry* e = rs_.intent(id);
    if (e == nullptr || !targets_host(*e, host_)) continue;
    if (journal_.finished.count(id) != 0) continue;
    if (journal_.entered.count(id) != 0) continue;  // on_recovered() settles it
    const progress_entry* p = rs_.progress(id, host_);
    if (p != nullptr && is_final_phase(p->progress.phase)) {
      journal_.finished[id] = p->progress;  // our own record, from before a lost journal
      persist(out);
      continue;
    }
    // Unsettled, our own records from before an empty data dir may still come: our final one
    // may follow the "entered" we hold (concluding "interrupted" now would sign a second final
    // record; the rollout simulator, seed 85), and an "entered" may follow nothing.
    if (!settled_) break;
    if (p != nullptr) {
      if (p->progress.phase == phase_entered && !options_.mutations.ignore_own_entered) {
        // Our own "entered" record, but no journal of it: this host entered before it lost its
        // data dir, and may have been killed mid-hook. Never enter twice: end it interrupted.
        journal_.entered.insert(id);
        const interruption lost{"", "",
                                "the host lost its rollout journal (data dir) inside the update "
                                "window; nothing was run again"};
        interrupted(out, id, &lost);
        continue;
      }
    }
    const gate_result g = gate(rs_, adm_, id, host_, options_.mutations, dead_);
    if (g.decision == gate_decision::skip) {
      skip(out, id, g.reason, g.message, {});
      continue;
    }
    if (g.decision == gate_decision::wait) {
      auto [it, fresh] = last_change_.try_emplace(id, now_);
      if (options_.progress_deadline_ms > 0 && !fresh &&
          now_ - it->second >= options_.progress_deadline_ms) {
        std::string list;
        for (const auto& b : g.blockers) list += (list.empty() ? "" : ", ") + b;
        skip(out, id, skip_timed_out,
             fmt::format("no progress for {} ms while waiting on {}", options_.progress_deadline_ms,
                         list),
             {});
        continue;
      }
      break;
    }
    // enter: durable first, then tell the world, then run.
    journal_.entered.insert(id);
    persist(out, !options_.mutations.skip_journal_sync);
    executing_ = id;
    events_.clear();
    updates_ = 0;
    validate_passed_ = false;
    stop_requested_ = false;
    publish(out, records::progress_payload{id, host_, phase_entered, {}}, 1);
    action a;
    a.kind = action_kind::start_execution;
    a.deployment = id;
    a.revision = e->intent.revision;
    out.push_back(std::move(a));
    break;
  }
  return out;
}

}  // namespace meshdeploy::deploy::rollout

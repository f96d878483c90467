#include "node/deploy/rollout/record_set.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace meshdeploy::deploy::rollout {

namespace {

auto intent_key(const intent_entry& e) {
  const auto& i = e.intent;
  return std::tie(e.created, i.app, i.group, i.revision, i.config, i.targets, i.max_out_of_service,
                  i.failure_budget, i.rollback_of, i.ignore_stop_failures, i.file_exists_behavior,
                  i.creator);
}

auto event_key(const records::event_progress& e) {
  return std::tie(e.name, e.status, e.start_ms, e.end_ms, e.error_code, e.script, e.message,
                  e.log_tail);
}

bool events_less(const std::vector<records::event_progress>& a,
                 const std::vector<records::event_progress>& b) {
  return std::lexicographical_compare(
      a.begin(), a.end(), b.begin(), b.end(),
      [](const auto& x, const auto& y) { return event_key(x) < event_key(y); });
}

bool events_equal(const std::vector<records::event_progress>& a,
                  const std::vector<records::event_progress>& b) {
  return !events_less(a, b) && !events_less(b, a);
}

// Total order on progress of one (deployment, host): version, then content.
bool progress_less(const progress_entry& a, const progress_entry& b) {
  if (a.version != b.version) return a.version < b.version;
  if (a.progress.phase != b.progress.phase) return a.progress.phase < b.progress.phase;
  return events_less(a.progress.events, b.progress.events);
}

bool progress_equal(const progress_entry& a, const progress_entry& b) {
  return a.version == b.version && a.progress.phase == b.progress.phase &&
         events_equal(a.progress.events, b.progress.events);
}

// FNV-1a, 64 bit, over length-prefixed fields.
struct fnv {
  std::uint64_t h = 1469598103934665603ULL;
  void byte(unsigned char c) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  void num(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) byte(static_cast<unsigned char>(v >> (8 * i)));
  }
  void str(const std::string& s) {
    num(s.size());
    for (char c : s) byte(static_cast<unsigned char>(c));
  }
};

}  // namespace

bool is_final_phase(const std::string& phase) {
  return phase == phase_resolved || phase == phase_failed || phase == phase_skipped;
}

record_set::record_set(std::string app, std::string group)
    : app_(std::move(app)), group_(std::move(group)) {}

std::vector<std::string> admission_committee(const records::intent_payload& intent) {
  // Targets, then the electorate (disjoint from the targets once decoded; checked again here
  // for intents built in process).
  std::vector<std::string> t = intent.targets;
  if (!intent.electorate.empty()) {
    std::set<std::string> seen(t.begin(), t.end());
    for (const auto& h : intent.electorate) {
      if (seen.insert(h).second) t.push_back(h);
    }
  }
  if (t.size() <= admission_committee_size) return t;
  const std::string prefix = intent.app + "/" + intent.group + "/";
  std::vector<std::pair<std::uint64_t, std::size_t>> ranked;
  ranked.reserve(t.size());
  for (std::size_t i = 0; i < t.size(); ++i) {
    fnv f;
    for (char c : prefix + t[i]) f.byte(static_cast<unsigned char>(c));
    ranked.emplace_back(f.h, i);
  }
  std::nth_element(ranked.begin(), ranked.begin() + admission_committee_size, ranked.end());
  ranked.resize(admission_committee_size);
  // Back to target order, so the committee reads like the target list.
  std::sort(ranked.begin(), ranked.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  std::vector<std::string> out;
  for (const auto& [h, i] : ranked) out.push_back(t[i]);
  return out;
}

std::shared_ptr<const intent_entry> make_intent_entry(records::intent_payload intent,
                                                      unix_ms created) {
  auto e = std::make_shared<intent_entry>();
  e->committee = admission_committee(intent);
  e->position.reserve(intent.targets.size());
  for (std::size_t i = 0; i < intent.targets.size(); ++i) {
    e->position.emplace(intent.targets[i], static_cast<std::uint32_t>(i));
  }
  e->intent = std::move(intent);
  e->created = created;
  return e;
}

bool record_set::add_intent(const records::intent_payload& intent, unix_ms created) {
  if (intent.app != app_ || intent.group != group_ || intent.deployment_id.empty()) return false;
  if (const intent_entry* have = this->intent(intent.deployment_id)) {
    const intent_entry probe{intent, created, {}, {}};
    if (!(intent_key(probe) < intent_key(*have))) return false;
  }
  return add_intent(make_intent_entry(intent, created));
}

bool record_set::add_intent(std::shared_ptr<const intent_entry> e) {
  const auto& intent = e->intent;
  if (intent.app != app_ || intent.group != group_ || intent.deployment_id.empty()) return false;
  auto [it, inserted] = intents_.try_emplace(intent.deployment_id, e);
  if (inserted) return true;
  if (intent_key(*e) < intent_key(*it->second)) {
    it->second = std::move(e);
    return true;
  }
  return false;
}

bool record_set::add_approval(const records::approval_payload& a) {
  if (a.app != app_ || a.group != group_ || a.child.empty() || a.host.empty()) return false;
  auto& by_host = approvals_[a.parent];
  auto [it, inserted] = by_host.try_emplace(a.host, a.child);
  if (inserted) return true;
  if (it->second == a.child) return false;
  conflicts_.emplace(a.parent, a.host);
  if (a.child < it->second) it->second = a.child;
  return true;
}

bool record_set::add_progress(const records::progress_payload& p, std::uint64_t version) {
  if (p.deployment_id.empty() || p.host.empty()) return false;
  progress_entry e{p, version};
  auto& by_host = progress_[p.deployment_id];
  auto [it, inserted] = by_host.try_emplace(p.host, e);
  if (inserted) return true;
  if (progress_equal(e, it->second) || progress_less(e, it->second)) return false;
  it->second = std::move(e);
  return true;
}

bool record_set::add_stop(const records::stop_payload& s) {
  if (s.app != app_ || s.group != group_ || s.deployment_id.empty()) return false;
  auto [it, inserted] = stops_.try_emplace(s.deployment_id, s);
  if (inserted) return true;
  if (s.reason < it->second.reason) {
    it->second = s;
    return true;
  }
  return false;
}

bool record_set::add_exclude(const records::exclude_payload& x) {
  if (x.app != app_ || x.group != group_ || x.deployment_id.empty()) return false;
  return excludes_.emplace(x.deployment_id, x.host).second;
}

const intent_entry* record_set::intent(const std::string& deployment_id) const {
  auto it = intents_.find(deployment_id);
  return it == intents_.end() ? nullptr : it->second.get();
}

std::vector<const intent_entry*> record_set::intents_in_order() const {
  std::vector<const intent_entry*> out;
  out.reserve(intents_.size());
  for (const auto& [id, e] : intents_) out.push_back(e.get());
  std::sort(out.begin(), out.end(), [](const intent_entry* a, const intent_entry* b) {
    return std::tie(a->created, a->intent.deployment_id) <
           std::tie(b->created, b->intent.deployment_id);
  });
  return out;
}

const progress_entry* record_set::progress(const std::string& deployment_id,
                                           const std::string& host) const {
  auto d = progress_.find(deployment_id);
  if (d == progress_.end()) return nullptr;
  auto h = d->second.find(host);
  return h == d->second.end() ? nullptr : &h->second;
}

const std::map<std::string, progress_entry>* record_set::progress_of(
    const std::string& deployment_id) const {
  auto d = progress_.find(deployment_id);
  return d == progress_.end() ? nullptr : &d->second;
}

const records::stop_payload* record_set::stop(const std::string& deployment_id) const {
  auto it = stops_.find(deployment_id);
  return it == stops_.end() ? nullptr : &it->second;
}

bool record_set::excluded(const std::string& deployment_id, const std::string& host) const {
  return excludes_.count({deployment_id, host}) != 0;
}

std::vector<std::string> record_set::excluded_hosts(const std::string& deployment_id) const {
  std::vector<std::string> out;
  for (auto it = excludes_.lower_bound({deployment_id, ""});
       it != excludes_.end() && it->first == deployment_id; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::size_t record_set::size() const {
  std::size_t n = intents_.size() + stops_.size() + excludes_.size();
  for (const auto& [p, m] : approvals_) n += m.size();
  for (const auto& [d, m] : progress_) n += m.size();
  return n;
}

std::uint64_t record_set::digest() const {
  // std::map iterates in key order, so the walk is canonical.
  fnv f;
  f.str(app_);
  f.str(group_);
  for (const auto& [id, e] : intents_) {
    const auto& i = e->intent;
    f.str(id);
    f.num(static_cast<std::uint64_t>(e->created));
    f.str(i.revision);
    f.str(i.config);
    f.num(i.max_out_of_service);
    f.num(i.failure_budget);
    f.str(i.rollback_of);
    for (const auto& t : i.targets) f.str(t);
  }
  f.byte(1);
  for (const auto& [parent, m] : approvals_) {
    for (const auto& [host, child] : m) {
      f.str(parent);
      f.str(host);
      f.str(child);
    }
  }
  for (const auto& [parent, host] : conflicts_) {
    f.str(parent);
    f.str(host);
  }
  f.byte(2);
  for (const auto& [d, m] : progress_) {
    for (const auto& [host, e] : m) {
      f.str(d);
      f.str(host);
      f.num(e.version);
      f.str(e.progress.phase);
      for (const auto& ev : e.progress.events) {
        f.str(ev.name);
        f.str(ev.status);
        f.str(ev.error_code);
        f.str(ev.message);
      }
    }
  }
  f.byte(3);
  for (const auto& [d, s] : stops_) {
    f.str(d);
    f.str(s.reason);
  }
  for (const auto& [d, h] : excludes_) {
    f.str(d);
    f.str(h);
  }
  return f.h;
}

bool operator==(const record_set& a, const record_set& b) {
  if (a.app_ != b.app_ || a.group_ != b.group_ || a.approvals_ != b.approvals_ ||
      a.conflicts_ != b.conflicts_ || a.excludes_ != b.excludes_ ||
      a.intents_.size() != b.intents_.size() || a.stops_.size() != b.stops_.size() ||
      a.progress_.size() != b.progress_.size()) {
    return false;
  }
  for (auto i = a.intents_.begin(), j = b.intents_.begin(); i != a.intents_.end(); ++i, ++j) {
    if (i->first != j->first || intent_key(*i->second) != intent_key(*j->second)) return false;
  }
  for (auto i = a.stops_.begin(), j = b.stops_.begin(); i != a.stops_.end(); ++i, ++j) {
    if (i->first != j->first || i->second.reason != j->second.reason) return false;
  }
  for (auto i = a.progress_.begin(), j = b.progress_.begin(); i != a.progress_.end(); ++i, ++j) {
    if (i->first != j->first || i->second.size() != j->second.size()) return false;
    for (auto x = i->second.begin(), y = j->second.begin(); x != i->second.end(); ++x, ++y) {
      if (x->first != y->first || !progress_equal(x->second, y->second)) return false;
    }
  }
  return true;
}

}  // namespace meshdeploy::deploy::rollout

#include "tests/sim/records_sim.h"

#include "node/records/errc.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <unistd.h>

namespace meshdeploy::sim {
namespace {
int instance = 0;  // distinguishes simulators of one process in their temp dir names
}  // namespace

using records::record;
using records::record_type;

struct records_sim::node {
  std::string name;
  std::filesystem::path dir;
  std::uint64_t incarnation = 0;
  bool alive = false;
  time_point tick_at = time_point::max();  // the tick scheduled for this incarnation
  std::unique_ptr<storage::db> db;
  std::unique_ptr<records::store> st;
  std::unique_ptr<records::replicator> rep;
  std::map<std::string, time_point> stored_at;  // sync id -> first stored (this process)
};

records::public_key records_sim::key_of(std::uint8_t b) {
  records::public_key k{};
  k.fill(b);
  return k;
}

records_sim::records_sim(records_sim_options options)
    : options_(std::move(options)), rng_(options_.seed) {
  if (sodium_init() < 0) std::abort();
  for (auto& b : sign_key_) b = static_cast<unsigned char>(rng_());
  root_ = options_.root;
  if (root_.empty()) {
    root_ = std::filesystem::temp_directory_path() /
            fmt::format("records-sim-{}-{}-{}", ::getpid(), options_.seed, instance++);
    own_root_ = true;
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  std::filesystem::create_directories(root_);
  group_.assign(options_.nodes, 0);
  for (std::size_t i = 0; i < options_.nodes; ++i) {
    auto n = std::make_unique<node>();
    n->name = fmt::format("n{}", i);
    n->dir = root_ / n->name;
    index_of_[n->name] = i;
    nodes_.push_back(std::move(n));
  }
  for (std::size_t i = 0; i < options_.nodes; ++i) open_node(i);
}

records_sim::~records_sim() {
  for (auto& n : nodes_) {
    n->rep.reset();
    n->st.reset();
    n->db.reset();
  }
  if (own_root_) {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
}

void records_sim::open_node(std::size_t i) {
  node& n = *nodes_[i];
  ++n.incarnation;
  auto db = storage::db::open({n.dir, records::store::column_families()});
  if (!db) {
    fmt::print(stderr, "records_sim: open {}: {}\n", n.dir.string(), db.error().message);
    std::abort();
  }
  n.db = std::move(db).value();
  // Buffered: survives a process crash (all the simulator models) and keeps thousands of
  // simulated nodes off the disk's fsync queue.
  auto st = records::store::open(*n.db, storage::durability::buffered);
  if (!st) {
    fmt::print(stderr, "records_sim: store {}: {}\n", n.name, st.error().message);
    std::abort();
  }
  n.st = std::move(st).value();
  records::replicator_env env;
  env.peers = [this, i] {
    std::vector<std::string> out;
    out.reserve(nodes_.size());
    for (std::size_t j = 0; j < nodes_.size(); ++j) {
      if (j != i && nodes_[j]->alive) out.push_back(nodes_[j]->name);
    }
    return out;
  };
  env.send = [this, i](const std::string& to, std::vector<std::byte> bytes) {
    send(i, to, std::move(bytes));
  };
  env.verify = [this, i](const record& r) { return verify(i, r); };
  n.rep = std::make_unique<records::replicator>(*n.st, std::move(env), options_.cfg, rng_());
  n.rep->set_on_stored([this, i](const record& r) {
    auto id = records::sync_id(r);
    if (nodes_[i]->stored_at.try_emplace(id, now_).second) {
      auto& [count, last] = stored_count_[id];
      ++count;
      last = now_;
    }
  });
  n.stored_at.clear();
  n.alive = true;
  n.tick_at = time_point::max();
  schedule_tick(i, now_);
}

record records_sim::sign(record r) const {
  const auto bytes = records::signing_bytes(r);
  crypto_generichash(r.sig.data(), r.sig.size(),
                     reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                     sign_key_.data(), sign_key_.size());
  return r;
}

record records_sim::grant(std::uint8_t op, std::uint64_t version) const {
  return make(record_type::grant, records::to_hex(key_of(op)), version, admin);
}

record records_sim::make(record_type t, std::string key, std::uint64_t version, std::uint8_t writer,
                         std::size_t payload_bytes) const {
  record r;
  r.type = t;
  r.key = std::move(key);
  r.version = version;
  r.writer = key_of(writer);
  r.time_ms = 1'700'000'000'000;
  r.payload.resize(payload_bytes);
  for (std::size_t k = 0; k < payload_bytes; ++k) {
    r.payload[k] = static_cast<std::byte>((k * 31 + version + r.key.size()) & 0xff);
  }
  return sign(std::move(r));
}

result<void> records_sim::verify(std::size_t i, const record& r) const {
  const record expected = sign(r);
  if (sodium_memcmp(expected.sig.data(), r.sig.data(), r.sig.size()) != 0) {
    return make_error(records::errc::bad_signature,
                      fmt::format("{}/{}: bad signature", records::to_string(r.type), r.key));
  }
  if (r.type == record_type::grant) {
    if (r.writer != key_of(admin)) {
      return make_error(records::errc::permission_denied, "grant not written by the admin key");
    }
    return ok();
  }
  if (r.type == record_type::host) return ok();
  if (nodes_[i]->st->grant_history(r.writer).empty()) {
    return make_error(records::errc::unknown_writer,
                      fmt::format("no grant for writer {}", records::to_hex(r.writer)));
  }
  return ok();
}

result<bool> records_sim::publish(std::size_t i, const record& r) {
  return nodes_[i]->rep->publish(r, now_);
}

void records_sim::inject(std::size_t from, std::size_t i, std::vector<std::byte> bytes) {
  event e;
  e.what = event::kind::deliver;
  e.to = i;
  e.from = from;
  e.to_incarnation = nodes_[i]->incarnation;
  e.from_incarnation = nodes_[from]->incarnation;
  e.bytes = std::move(bytes);
  queue_.emplace(std::pair(now_, seq_++), std::move(e));
}

void records_sim::schedule_tick(std::size_t i, time_point at) {
  node& n = *nodes_[i];
  at = std::max(at, now_);
  if (at >= n.tick_at) return;  // an earlier tick is already queued
  n.tick_at = at;
  event e;
  e.what = event::kind::tick;
  e.to = i;
  e.to_incarnation = n.incarnation;
  queue_.emplace(std::pair(at, seq_++), std::move(e));
}

bool records_sim::reachable(std::size_t a, std::size_t b) const { return group_[a] == group_[b]; }

void records_sim::send(std::size_t from, const std::string& to, std::vector<std::byte> bytes) {
  auto it = index_of_.find(to);
  if (it == index_of_.end()) return;
  const std::size_t j = it->second;
  ++counters_.messages_sent;
  counters_.bytes_sent += bytes.size();
  if (!reachable(from, j)) {
    ++counters_.messages_partitioned;
    return;
  }
  // Draw both numbers always, so loss settings do not shift the rest of the random stream.
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  const auto jitter =
      static_cast<duration::rep>(rng_() % static_cast<std::uint64_t>(std::max<duration::rep>(
                                              1, options_.latency_jitter.count())));
  if (u < options_.loss) {
    ++counters_.messages_lost;
    return;
  }
  event e;
  e.what = event::kind::deliver;
  e.to = j;
  e.from = from;
  e.to_incarnation = nodes_[j]->incarnation;
  e.from_incarnation = nodes_[from]->incarnation;
  e.bytes = std::move(bytes);
  queue_.emplace(std::pair(now_ + options_.latency_base + duration(jitter), seq_++), std::move(e));
}

void records_sim::handle(event& e) {
  node& n = *nodes_[e.to];
  if (e.what == event::kind::tick) {
    if (!n.alive || e.to_incarnation != n.incarnation) return;
    n.tick_at = time_point::max();
    n.rep->on_tick(now_);
    schedule_tick(e.to, n.rep->next_deadline());
    return;
  }
  if (!n.alive || e.to_incarnation != n.incarnation ||
      e.from_incarnation != nodes_[e.from]->incarnation || !nodes_[e.from]->alive) {
    ++counters_.messages_to_dead;
    return;
  }
  if (!reachable(e.from, e.to)) {
    ++counters_.messages_partitioned;
    return;
  }
  ++counters_.messages_delivered;
  // FNV-1a over (time, from, to, size, first bytes).
  auto mix = [this](std::uint64_t v) {
    for (int k = 0; k < 8; ++k) {
      trace_ ^= (v >> (8 * k)) & 0xff;
      trace_ *= 1099511628211ULL;
    }
  };
  mix(static_cast<std::uint64_t>(now_.time_since_epoch().count()));
  mix(e.from);
  mix(e.to);
  mix(e.bytes.size());
  for (std::size_t k = 0; k < std::min<std::size_t>(e.bytes.size(), 64); ++k) {
    mix(static_cast<std::uint64_t>(e.bytes[k]));
  }
  n.rep->on_message(nodes_[e.from]->name, e.bytes, now_);
}

bool records_sim::step(time_point end) {
  if (queue_.empty() || queue_.begin()->first.first > end) {
    now_ = std::max(now_, end);
    return false;
  }
  now_ = queue_.begin()->first.first;
  // Every event of this instant, including those it schedules for the same instant.
  for (int guard = 0; guard < 10'000'000 && !queue_.empty() && queue_.begin()->first.first == now_;
       ++guard) {
    auto node_handle = queue_.extract(queue_.begin());
    ++counters_.events;
    handle(node_handle.mapped());
  }
  return true;
}

void records_sim::run_for(duration d) {
  const time_point end = now_ + d;
  for (std::uint64_t guard = 0; guard < 1'000'000'000ULL && step(end); ++guard) {
  }
}

void records_sim::partition(const std::vector<std::vector<std::size_t>>& groups) {
  std::fill(group_.begin(), group_.end(), 0);
  int g = 1;
  for (const auto& members : groups) {
    for (std::size_t i : members) group_[i] = g;
    ++g;
  }
}

void records_sim::heal() { std::fill(group_.begin(), group_.end(), 0); }

void records_sim::crash(std::size_t i) {
  node& n = *nodes_[i];
  if (!n.alive) return;
  n.alive = false;
  ++n.incarnation;  // invalidates queued ticks and messages
  n.rep.reset();
  n.st.reset();
  n.db.reset();
}

void records_sim::restart(std::size_t i, bool wipe) {
  node& n = *nodes_[i];
  if (n.alive) crash(i);
  if (wipe) {
    std::error_code ec;
    std::filesystem::remove_all(n.dir, ec);
  }
  open_node(i);
}

bool records_sim::alive(std::size_t i) const { return nodes_[i]->alive; }

records::replicator& records_sim::replicator(std::size_t i) { return *nodes_[i]->rep; }
records::store& records_sim::store(std::size_t i) { return *nodes_[i]->st; }

std::optional<time_point> records_sim::stored_at(std::size_t i, const std::string& id) const {
  const auto& m = nodes_[i]->stored_at;
  auto it = m.find(id);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::size_t records_sim::stored_count(const std::string& id) const {
  auto it = stored_count_.find(id);
  return it == stored_count_.end() ? 0 : it->second.first;
}

std::optional<time_point> records_sim::last_stored_at(const std::string& id) const {
  auto it = stored_count_.find(id);
  if (it == stored_count_.end()) return std::nullopt;
  return it->second.second;
}

bool records_sim::holds(std::size_t i, record_type t, const std::string& key,
                        std::uint64_t version) const {
  if (!nodes_[i]->alive) return false;
  auto r = nodes_[i]->st->get(t, key);
  return r && r.value() && r.value()->version >= version;
}

std::map<std::string, std::string> records_sim::content_hashes(std::size_t i) const {
  std::map<std::string, std::string> out;
  const node& n = *nodes_[i];
  if (!n.alive) return out;
  auto hash_of = [](const std::vector<record>& rs) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, nullptr, 0, 32);
    for (const auto& r : rs) {
      const auto bytes = records::encode(r);
      crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(bytes.data()),
                                bytes.size());
    }
    std::array<std::uint8_t, 32> h{};
    crypto_generichash_final(&st, h.data(), h.size());
    return records::to_hex(h);
  };
  std::vector<record> grants;
  for (std::uint8_t t = 1; t <= records::max_record_type; ++t) {
    const auto type = static_cast<record_type>(t);
    auto rs = n.st->scan(type);
    if (!rs) {
      out[std::string(records::to_string(type))] = "error: " + rs.error().message;
      continue;
    }
    if (type == record_type::grant) grants = rs.value();
    out[std::string(records::to_string(type))] = hash_of(rs.value());
  }
  std::vector<record> history;
  for (const auto& g : grants) {
    auto op = records::public_key_from_hex(g.key);
    if (!op) continue;
    auto h = n.st->grant_history(op.value());
    history.insert(history.end(), h.begin(), h.end());
  }
  out["grant_history"] = hash_of(history);
  // Tombstones are in the sync index only; its root covers them (and everything else).
  out["index_root"] = fmt::format("{:016x}/{}", n.st->root_digest(), n.st->index_size());
  return out;
}

bool records_sim::converged() const {
  std::optional<std::map<std::string, std::string>> ref;
  std::optional<std::uint64_t> root;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i]->alive) continue;
    // The root is cheap: compare it first and hash the contents only when all roots agree.
    const auto r = nodes_[i]->st->root_digest();
    if (!root) root = r;
    if (*root != r) return false;
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i]->alive) continue;
    auto h = content_hashes(i);
    if (!ref) {
      ref = std::move(h);
    } else if (*ref != h) {
      return false;
    }
  }
  return true;
}

std::string records_sim::describe_divergence() const {
  std::string out;
  std::optional<std::size_t> ref_i;
  std::map<std::string, std::string> ref;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i]->alive) continue;
    auto h = content_hashes(i);
    if (!ref_i) {
      ref_i = i;
      ref = std::move(h);
      continue;
    }
    for (const auto& [type, hash] : h) {
      if (ref[type] != hash) out += fmt::format("n{} differs from n{} in {}; ", i, *ref_i, type);
    }
  }
  return out.empty() ? "converged" : out;
}

}  // namespace meshdeploy::sim

#include "node/records/store.h"

#include "node/records/errc.h"
#include "node/records/payloads.h"
#include "storage/key.h"

#include <fmt/format.h>
#include <msgpack.hpp>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <set>
#include <utility>
#include <variant>

namespace meshdeploy::records {
namespace {

constexpr std::string_view history_cf = "rec_grant_history";
constexpr std::string_view tombstone_cf = "rec_tombstone";

std::string cf_of(record_type t) { return fmt::format("rec_{}", to_string(t)); }

bool prunable(record_type t) {
  switch (t) {
    case record_type::intent:
    case record_type::progress:
    case record_type::stop:
    case record_type::exclude:
    case record_type::approval:
      return true;
    default:
      return false;
  }
}

std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::optional<std::uint64_t> from_be64(std::string_view s) {
  if (s.size() != 8) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) v = v << 8 | static_cast<std::uint8_t>(c);
  return v;
}

std::uint64_t entry_digest(std::string_view id, std::uint64_t version, const record_hash* h) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 8);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(id.data()), id.size());
  const std::string v = be64(version);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(v.data()), v.size());
  if (h != nullptr) crypto_generichash_update(&st, h->data(), h->size());
  unsigned char out[8];
  crypto_generichash_final(&st, out, sizeof out);
  std::uint64_t d = 0;
  for (unsigned char c : out) d = d << 8 | c;
  return d == 0 ? 1 : d;  // 0 means "empty" in XOR sums
}

error io_error(const error& e, std::string_view what) {
  return make_error(errc::io, fmt::format("record store: {}: {}", what, e.message));
}

result<record> decode_stored(std::string_view value, std::string_view where) {
  auto r = decode(std::span(reinterpret_cast<const std::byte*>(value.data()), value.size()));
  if (!r)
    return make_error(errc::io, fmt::format("record store: {}: {}", where, r.error().message));
  return std::move(r).value();
}

std::string_view as_view(const std::vector<std::byte>& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// The first `n` string elements of a msgpack array payload (payloads.h: arrays of fields in
// declaration order). Read here directly so the store needs only the envelope, not the payload
// codec. nullopt when the payload does not start with n strings.
std::optional<std::vector<std::string>> leading_strings(const std::vector<std::byte>& payload,
                                                        std::size_t n) {
  try {
    msgpack::unpack_limit limit(4096, 64, max_payload_bytes, max_payload_bytes, 0, 8);
    std::size_t off = 0;
    auto oh = msgpack::unpack(reinterpret_cast<const char*>(payload.data()), payload.size(), off,
                              nullptr, nullptr, limit);
    const msgpack::object& o = oh.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size < n) return std::nullopt;
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& e = o.via.array.ptr[i];
      if (e.type != msgpack::type::STR) return std::nullopt;
      out.emplace_back(e.via.str.ptr, e.via.str.size);
    }
    return out;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::string_view to_string(put_outcome o) {
  switch (o) {
    case put_outcome::stored:
      return "stored";
    case put_outcome::stale:
      return "stale";
    case put_outcome::replaced:
      return "replaced";
  }
  return "unknown";
}

std::size_t bucket_of(std::string_view id) {
  unsigned char h[8];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(id.data()), id.size(),
                     nullptr, 0);
  return h[0] % sync_buckets;
}

std::string sync_id(const record& r) {
  std::string id(1, static_cast<char>(r.type));
  storage::key k;
  k.str(r.key);
  if (r.type == record_type::grant) k.u64(r.version);
  id += k.bytes();
  return id;
}

std::string tombstone_id(record_type t, std::string_view key) {
  std::string id(1, static_cast<char>(static_cast<std::uint8_t>(t) | tombstone_flag));
  id += storage::key().str(key).bytes();
  return id;
}

std::optional<parsed_id> parse_sync_id(std::string_view id) {
  if (id.empty()) return std::nullopt;
  parsed_id p;
  p.type = static_cast<std::uint8_t>(id[0]);
  const std::uint8_t base = p.type & static_cast<std::uint8_t>(~tombstone_flag);
  if (base == 0 || base > max_record_type) return std::nullopt;
  storage::key_reader rd(id.substr(1));
  auto k = rd.str();
  if (!k) return std::nullopt;
  p.key = std::move(k).value();
  if (base == static_cast<std::uint8_t>(record_type::grant) && !(p.type & tombstone_flag)) {
    if (!rd.u64()) return std::nullopt;
  }
  if (!rd.done()) return std::nullopt;
  return p;
}

std::vector<std::string> store::column_families() {
  std::vector<std::string> out;
  for (std::uint8_t t = 1; t <= max_record_type; ++t) {
    out.push_back(cf_of(static_cast<record_type>(t)));
  }
  out.emplace_back(history_cf);
  out.emplace_back(tombstone_cf);
  return out;
}

store::store(storage::db& db, storage::durability durability) : db_(db), durability_(durability) {}
store::~store() = default;

result<std::unique_ptr<store>> store::open(storage::db& db, storage::durability durability) {
  std::unique_ptr<store> s(new store(db, durability));
  MESH_CHECK(s->load_index());
  return s;
}

result<void> store::load_index() {
  std::optional<error> failure;
  auto add = [&](const std::string& id, std::uint64_t version, const record_hash* h) {
    index_set(id, sync_entry{version, entry_digest(id, version, h)});
  };
  for (std::uint8_t t = 1; t <= max_record_type; ++t) {
    const auto type = static_cast<record_type>(t);
    if (type == record_type::grant) continue;  // indexed per version from the history
    const std::string cf = cf_of(type);
    auto st = db_.scan(cf, {}, [&](std::string_view, std::string_view v) {
      auto r = decode_stored(v, cf);
      if (!r) {
        failure = r.error();
        return false;
      }
      const record_hash h =
          hash_of_encoded(std::span(reinterpret_cast<const std::byte*>(v.data()), v.size()));
      add(sync_id(r.value()), r.value().version, &h);
      return true;
    });
    if (!st) return io_error(st.error(), "load index " + cf);
    if (failure) return *failure;
  }
  auto st = db_.scan(history_cf, {}, [&](std::string_view, std::string_view v) {
    auto r = decode_stored(v, history_cf);
    if (!r) {
      failure = r.error();
      return false;
    }
    const record_hash h =
        hash_of_encoded(std::span(reinterpret_cast<const std::byte*>(v.data()), v.size()));
    add(sync_id(r.value()), r.value().version, &h);
    return true;
  });
  if (!st) return io_error(st.error(), "load index rec_grant_history");
  if (failure) return *failure;
  st = db_.scan(tombstone_cf, {}, [&](std::string_view k, std::string_view v) {
    auto version = from_be64(v);
    if (!version || !parse_sync_id(k)) {
      failure = make_error(errc::io, "record store: rec_tombstone: malformed entry");
      return false;
    }
    add(std::string(k), *version, nullptr);
    return true;
  });
  if (!st) return io_error(st.error(), "load index rec_tombstone");
  if (failure) return *failure;
  return ok();
}

void store::index_set(const std::string& id, sync_entry e) {
  const std::size_t b = bucket_of(id);
  std::lock_guard lock(index_mu_);
  auto [it, inserted] = index_[b].try_emplace(id, e);
  if (inserted) ++index_size_;
  if (!inserted) {
    buckets_[b] ^= it->second.digest;
    root_ ^= it->second.digest;
    it->second = e;
  }
  buckets_[b] ^= e.digest;
  root_ ^= e.digest;
}

void store::index_erase(const std::string& id) {
  const std::size_t b = bucket_of(id);
  std::lock_guard lock(index_mu_);
  auto it = index_[b].find(id);
  if (it == index_[b].end()) return;
  buckets_[b] ^= it->second.digest;
  root_ ^= it->second.digest;
  index_[b].erase(it);
  --index_size_;
}

result<put_outcome> store::put(const record& r) { return put(r, durability_); }

result<put_outcome> store::put(const record& r, storage::durability durability) {
  std::lock_guard lock(write_mu_);
  const std::string cf = cf_of(r.type);
  const std::string k = storage::key().str(r.key).bytes();
  const std::vector<std::byte> encoded = encode(r);
  const record_hash h = hash_of_encoded(encoded);
  storage::write_batch batch;
  std::vector<std::pair<std::string, sync_entry>> index_updates;

  // Every grant version goes to the history (the verifier checks old records against the grant
  // in force when they were signed), whether or not it is the newest.
  if (r.type == record_type::grant) {
    const std::string hk = storage::key().str(r.key).u64(r.version).bytes();
    auto old = db_.get(history_cf, hk);
    if (!old) return io_error(old.error(), fmt::format("get rec_grant_history {}", r.key));
    bool keep = true;
    if (old.value()) {
      MESH_TRY(auto prev, decode_stored(*old.value(), history_cf));
      keep = supersedes(r, prev);
    }
    if (keep) {
      batch.put(history_cf, hk, as_view(encoded));
      index_updates.emplace_back(sync_id(r),
                                 sync_entry{r.version, entry_digest(sync_id(r), r.version, &h)});
    }
  }

  put_outcome outcome = put_outcome::stored;
  auto tomb = tombstone(r.type, r.key);
  if (!tomb) return tomb.error();
  if (tomb.value() && r.version <= *tomb.value()) {
    outcome = put_outcome::stale;
  } else {
    auto old = db_.get(cf, k);
    if (!old) return io_error(old.error(), fmt::format("get {} {}", cf, r.key));
    if (old.value()) {
      MESH_TRY(auto prev, decode_stored(*old.value(), cf));
      if (r.type == record_type::host && prev.writer != r.writer) {
        spdlog::warn("records: host {} is bound to key {}; refusing a second binding to {}", r.key,
                     to_hex(prev.writer), to_hex(r.writer));
        return make_error(errc::conflict,
                          fmt::format("record store: host {} is already bound to key {}", r.key,
                                      to_hex(prev.writer)));
      }
      outcome = supersedes(r, prev) ? put_outcome::replaced : put_outcome::stale;
    }
  }
  if (outcome != put_outcome::stale) {
    batch.put(cf, k, as_view(encoded));
    if (r.type != record_type::grant) {
      index_updates.emplace_back(sync_id(r),
                                 sync_entry{r.version, entry_digest(sync_id(r), r.version, &h)});
    }
  }
  if (batch.empty()) return outcome;
  auto st = db_.write(std::move(batch), durability);
  if (!st) return io_error(st.error(), fmt::format("write {} {}", cf, r.key));
  for (auto& [id, e] : index_updates) index_set(id, e);
  return outcome;
}

result<std::optional<record>> store::get(record_type t, std::string_view key) const {
  const std::string cf = cf_of(t);
  auto v = db_.get(cf, storage::key().str(key));
  if (!v) return io_error(v.error(), fmt::format("get {} {}", cf, key));
  if (!v.value()) return std::optional<record>{};
  MESH_TRY(auto r, decode_stored(*v.value(), cf));
  return std::optional<record>(std::move(r));
}

result<std::vector<record>> store::scan(record_type t, std::string_view key_prefix) const {
  const std::string cf = cf_of(t);
  // The stored key is the record key escaped and terminated (storage/key.h); the escaped form
  // of a plain prefix is the escaped prefix without the terminator.
  std::string prefix = storage::key().str(key_prefix).bytes();
  prefix.resize(prefix.size() - 2);
  std::vector<record> out;
  std::optional<error> failure;
  auto st = db_.scan(cf, prefix, [&](std::string_view, std::string_view v) {
    auto r = decode_stored(v, cf);
    if (!r) {
      failure = r.error();
      return false;
    }
    out.push_back(std::move(r).value());
    return true;
  });
  if (!st) return io_error(st.error(), fmt::format("scan {} '{}'", cf, key_prefix));
  if (failure) return *failure;
  return out;
}

result<std::size_t> store::count(record_type t) const {
  const std::string cf = cf_of(t);
  std::size_t n = 0;
  auto st = db_.scan(cf, {}, [&](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  if (!st) return io_error(st.error(), fmt::format("count {}", cf));
  return n;
}

std::vector<record> store::grant_history(const public_key& op) const {
  std::vector<record> out;
  const std::string prefix = storage::key().str(to_hex(op)).bytes();
  auto st = db_.scan(history_cf, prefix, [&](std::string_view, std::string_view v) {
    auto r = decode_stored(v, history_cf);
    if (!r) {
      spdlog::error("records: {}", r.error().message);
      return true;
    }
    out.push_back(std::move(r).value());
    return true;
  });
  if (!st) spdlog::error("records: grant history of {}: {}", to_hex(op), st.error().message);
  return out;  // ascending: the version is a big-endian key component
}

std::optional<public_key> store::host_key(std::string_view name) const {
  auto r = get(record_type::host, name);
  if (!r) {
    spdlog::error("records: host key of {}: {}", name, r.error().message);
    return std::nullopt;
  }
  if (!r.value()) return std::nullopt;
  return r.value()->writer;
}

std::optional<bool> store::group_auto_rollback(std::string_view app, std::string_view group) const {
  auto r = get(record_type::group, std::string(app) + "/" + std::string(group));
  if (!r || !r.value()) return std::nullopt;
  auto p = decode_payload(record_type::group, r.value()->payload);
  if (!p || !std::holds_alternative<group_payload>(p.value())) return std::nullopt;
  const auto& g = std::get<group_payload>(p.value());
  if (g.deleted) return std::nullopt;
  return g.auto_rollback;
}

result<std::optional<std::uint64_t>> store::tombstone(record_type t, std::string_view key) const {
  const std::string id = tombstone_id(t, key);
  auto v = db_.get(tombstone_cf, id);
  if (!v) return io_error(v.error(), fmt::format("get rec_tombstone {}/{}", to_string(t), key));
  if (!v.value()) return std::optional<std::uint64_t>{};
  auto version = from_be64(*v.value());
  if (!version) {
    return make_error(errc::io, fmt::format("record store: rec_tombstone {}/{}: malformed value",
                                            to_string(t), key));
  }
  return std::optional<std::uint64_t>(*version);
}

result<bool> store::apply_tombstone(record_type t, std::string_view key, std::uint64_t version) {
  if (!prunable(t)) return false;
  std::lock_guard lock(write_mu_);
  MESH_TRY(auto held, get(t, key));
  if (held) return false;
  MESH_TRY(auto tomb, tombstone(t, key));
  if (tomb && *tomb >= version) return false;
  const std::string id = tombstone_id(t, key);
  auto st = db_.put(tombstone_cf, id, be64(version), durability_);
  if (!st) return io_error(st.error(), fmt::format("put rec_tombstone {}/{}", to_string(t), key));
  index_set(id, sync_entry{version, entry_digest(id, version, nullptr)});
  return true;
}

result<prune_stats> store::prune(std::int64_t now_ms, const prune_options& options) {
  std::lock_guard lock(write_mu_);
  MESH_TRY(auto intents, scan(record_type::intent));
  // app/group -> (time_ms, deployment id), newest first after sorting.
  std::map<std::string, std::vector<std::pair<std::int64_t, std::string>>> groups;
  for (const record& r : intents) {
    auto f = leading_strings(r.payload, 3);
    if (!f) {
      spdlog::warn("records: prune: intent {} has an unreadable payload; kept", r.key);
      continue;
    }
    groups[(*f)[1] + "/" + (*f)[2]].emplace_back(r.time_ms, r.key);
  }
  std::set<std::string> doomed;
  for (auto& [group, list] : groups) {
    std::sort(list.begin(), list.end(), std::greater<>());
    for (std::size_t i = options.keep_per_group; i < list.size(); ++i) {
      if (now_ms - list[i].first > options.max_age_ms) doomed.insert(list[i].second);
    }
  }
  prune_stats stats;
  if (doomed.empty()) return stats;

  storage::write_batch batch;
  std::vector<std::pair<std::string, std::uint64_t>> tombs;  // tombstone id, version
  std::vector<std::string> erased;                           // record sync ids
  auto drop = [&](const record& r) {
    batch.erase(cf_of(r.type), storage::key().str(r.key).bytes());
    const std::string tid = tombstone_id(r.type, r.key);
    batch.put(tombstone_cf, tid, be64(r.version));
    tombs.emplace_back(tid, r.version);
    erased.push_back(sync_id(r));
    ++stats.records;
  };
  for (const std::string& id : doomed) {
    MESH_TRY(auto intent, get(record_type::intent, id));
    if (intent) drop(*intent);
    ++stats.deployments;
    MESH_TRY(auto stop, get(record_type::stop, id));
    if (stop) drop(*stop);
    for (record_type t : {record_type::progress, record_type::exclude}) {
      MESH_TRY(auto list, scan(t, id + "/"));
      for (const record& r : list) drop(r);
    }
  }
  MESH_TRY(auto approvals, scan(record_type::approval));
  for (const record& r : approvals) {
    auto f = leading_strings(r.payload, 4);
    if (f && doomed.contains((*f)[3])) drop(r);
  }
  auto st = db_.write(std::move(batch), durability_);
  if (!st) return io_error(st.error(), "prune");
  for (const auto& id : erased) index_erase(id);
  for (const auto& [id, v] : tombs) index_set(id, sync_entry{v, entry_digest(id, v, nullptr)});
  spdlog::info("records: pruned {} deployments ({} records)", stats.deployments, stats.records);
  return stats;
}

std::uint64_t store::root_digest() const {
  std::lock_guard lock(index_mu_);
  return root_;
}

std::size_t store::index_size() const {
  std::lock_guard lock(index_mu_);
  return index_size_;
}

std::array<std::uint64_t, sync_buckets> store::bucket_digests() const {
  std::lock_guard lock(index_mu_);
  return buckets_;
}

std::map<std::string, sync_entry> store::bucket_entries(
    const std::vector<std::uint16_t>& buckets) const {
  std::map<std::string, sync_entry> out;
  std::lock_guard lock(index_mu_);
  for (std::uint16_t b : buckets) {
    if (b < sync_buckets) out.insert(index_[b].begin(), index_[b].end());
  }
  return out;
}

result<std::optional<record>> store::get_by_id(std::string_view id) const {
  auto p = parse_sync_id(id);
  if (!p || (p->type & tombstone_flag)) return std::optional<record>{};
  const auto t = static_cast<record_type>(p->type);
  if (t != record_type::grant) return get(t, p->key);
  // Grant ids carry the version: read that version from the history.
  auto v = db_.get(history_cf, id.substr(1));
  if (!v) return io_error(v.error(), fmt::format("get rec_grant_history {}", p->key));
  if (!v.value()) return std::optional<record>{};
  MESH_TRY(auto r, decode_stored(*v.value(), history_cf));
  return std::optional<record>(std::move(r));
}

}  // namespace meshdeploy::records

#include "storage/db.h"

#include "storage/errc.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <map>
#include <set>
#include <system_error>
#include <utility>

namespace meshdeploy::storage {
namespace {

namespace fs = std::filesystem;

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// A key or prefix for an error message: printable ASCII as is, other bytes as
// \xNN, at most 64 input bytes.
std::string printable(std::string_view bytes) {
  constexpr std::size_t limit = 64;
  constexpr std::string_view digits = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < bytes.size() && i < limit; ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (b >= 0x20 && b < 0x7f && b != '"' && b != '\\') {
      out.push_back(static_cast<char>(b));
    } else {
      out += "\\x";
      out.push_back(digits[b >> 4]);
      out.push_back(digits[b & 0xf]);
    }
  }
  out += "\"";
  if (bytes.size() > limit) out += "... (" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

errc to_errc(const rocksdb::Status& s) {
  switch (s.code()) {
    case rocksdb::Status::kOk:
      return errc::ok;
    case rocksdb::Status::kCorruption:
      return errc::corruption;
    case rocksdb::Status::kInvalidArgument:
      return errc::invalid_argument;
    case rocksdb::Status::kNotSupported:
      return errc::not_supported;
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTryAgain:
    case rocksdb::Status::kTimedOut:
    case rocksdb::Status::kIncomplete:
      return errc::busy;
    default:
      return errc::io_error;
  }
}

// "storage <what> in column family 'cf' of <dir>: <RocksDB status text>"
error status_error(const rocksdb::Status& s, std::string_view what, std::string_view cf,
                   const fs::path& dir) {
  return make_error(to_errc(s), "storage " + std::string(what) + " in column family '" +
                                    std::string(cf) + "' of " + dir.string() + ": " + s.ToString());
}

rocksdb::WriteOptions write_options(durability d) {
  rocksdb::WriteOptions o;
  o.sync = d == durability::synced;
  return o;
}

// The smallest string greater than every string starting with `prefix`, or
// nullopt when there is none (empty or all-0xFF prefix).
std::optional<std::string> prefix_successor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty() && static_cast<unsigned char>(s.back()) == 0xff) s.pop_back();
  if (s.empty()) return std::nullopt;
  s.back() = static_cast<char>(static_cast<unsigned char>(s.back()) + 1);
  return s;
}

rocksdb::Options make_options(const open_options& opts) {
  rocksdb::Options o;
  o.write_buffer_size = opts.write_buffer_bytes;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  // The node's data is small; keep RocksDB's own info logs from piling up.
  o.keep_log_file_num = 3;
  o.max_log_file_size = 4 << 20;
  // kPointInTimeRecovery (the default, stated here because the crash story
  // depends on it): after a crash the WAL is replayed up to the last intact
  // record and a torn tail is dropped; only unsynced writes can be in it.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  return o;
}

}  // namespace

// ---------------------------------------------------------------------------
// write_batch

write_batch::write_batch() = default;
write_batch::~write_batch() = default;
write_batch::write_batch(write_batch&&) noexcept = default;
write_batch& write_batch::operator=(write_batch&&) noexcept = default;

void write_batch::put(std::string_view column_family, std::string_view key,
                      std::string_view value) {
  ops_.push_back(op{true, std::string(column_family), std::string(key), std::string(value)});
}

void write_batch::erase(std::string_view column_family, std::string_view key) {
  ops_.push_back(op{false, std::string(column_family), std::string(key), {}});
}

// ---------------------------------------------------------------------------
// db

struct db::impl {
  fs::path dir;
  std::unique_ptr<rocksdb::DB> rdb;
  // Fixed after open; read concurrently without locking. Handles are owned by
  // this object and destroyed before rdb is closed.
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> families;

  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  ~impl() {
    if (!rdb) return;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    for (const auto& [name, h] : families) handles.push_back(h);
    // Best effort: the destructor has nobody to report to (see db::~db).
    (void)rdb->Flush(rocksdb::FlushOptions(), handles);
    (void)rdb->SyncWAL();
    for (auto* h : handles) (void)rdb->DestroyColumnFamilyHandle(h);
    families.clear();
    (void)rdb->Close();
    rdb.reset();
  }

  // The handle of `cf`, or invalid_argument naming it and the known ones.
  result<rocksdb::ColumnFamilyHandle*> handle(std::string_view cf, std::string_view what) const {
    auto it = families.find(cf);
    if (it != families.end()) return it->second;
    std::string known;
    for (const auto& [name, h] : families) known += (known.empty() ? "" : ", ") + name;
    return make_error(errc::invalid_argument,
                      "storage " + std::string(what) + ": unknown column family '" +
                          std::string(cf) + "' in " + dir.string() + " (open: " + known + ")");
  }
};

db::db(passkey, std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}

db::~db() = default;

result<std::unique_ptr<db>> db::open(const open_options& options) {
  if (options.dir.empty()) {
    return make_error(errc::invalid_argument, "storage open: empty database directory");
  }
  const fs::path& dir = options.dir;
  std::set<std::string> names{rocksdb::kDefaultColumnFamilyName};
  for (const auto& name : options.column_families) {
    if (name.empty()) {
      return make_error(errc::invalid_argument,
                        "storage open: empty column family name for " + dir.string());
    }
    names.insert(name);
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return make_error(errc::io_error, "storage open: cannot create directory " + dir.string() +
                                          ": " + ec.message());
  }

  const rocksdb::Options rocks_options = make_options(options);
  // An existing database may hold families the caller did not list (written
  // by a newer version); RocksDB refuses to open without all of them.
  if (fs::exists(dir / "CURRENT", ec)) {
    std::vector<std::string> existing;
    auto s = rocksdb::DB::ListColumnFamilies(rocks_options, dir.string(), &existing);
    if (!s.ok()) {
      return make_error(to_errc(s), "storage open: cannot list column families of " + dir.string() +
                                        ": " + s.ToString());
    }
    names.insert(existing.begin(), existing.end());
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions(rocks_options));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(rocksdb::DBOptions(rocks_options), dir.string(), descriptors, &handles,
                             &raw);
  if (!s.ok()) {
    return make_error(to_errc(s), "storage open: " + dir.string() + ": " + s.ToString());
  }
  auto state = std::make_unique<impl>();
  state->dir = dir;
  state->rdb.reset(raw);
  // RocksDB returns the handles in descriptor order.
  for (std::size_t i = 0; i < handles.size(); ++i) {
    state->families.emplace(descriptors[i].name, handles[i]);
  }
  return std::make_unique<db>(passkey{}, std::move(state));
}

result<std::optional<std::string>> db::get(std::string_view cf, std::string_view key) const {
  MESH_TRY(auto* h, impl_->handle(cf, "get"));
  rocksdb::PinnableSlice value;
  auto s = impl_->rdb->Get(rocksdb::ReadOptions(), h, slice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return status_error(s, "get " + printable(key), cf, impl_->dir);
  return std::optional<std::string>(std::string(view(value)));
}

result<void> db::put(std::string_view cf, std::string_view key, std::string_view value,
                     durability d) {
  MESH_TRY(auto* h, impl_->handle(cf, "put"));
  auto s = impl_->rdb->Put(write_options(d), h, slice(key), slice(value));
  if (!s.ok()) return status_error(s, "put " + printable(key), cf, impl_->dir);
  return ok();
}

result<void> db::erase(std::string_view cf, std::string_view key, durability d) {
  MESH_TRY(auto* h, impl_->handle(cf, "erase"));
  auto s = impl_->rdb->Delete(write_options(d), h, slice(key));
  if (!s.ok()) return status_error(s, "erase " + printable(key), cf, impl_->dir);
  return ok();
}

result<void> db::write(write_batch&& batch, durability d) {
  const write_batch consumed = std::move(batch);
  if (consumed.empty()) return ok();
  // Resolve every family first so that an unknown one writes nothing.
  rocksdb::WriteBatch wb;
  for (std::size_t i = 0; i < consumed.ops_.size(); ++i) {
    const auto& o = consumed.ops_[i];
    const std::string what = "write (operation " + std::to_string(i) + ", " +
                             (o.is_put ? "put " : "erase ") + printable(o.key) + ")";
    MESH_TRY(auto* h, impl_->handle(o.column_family, what));
    auto s = o.is_put ? wb.Put(h, slice(o.key), slice(o.value)) : wb.Delete(h, slice(o.key));
    if (!s.ok()) return status_error(s, what, o.column_family, impl_->dir);
  }
  auto s = impl_->rdb->Write(write_options(d), &wb);
  if (!s.ok()) {
    // The batch may span families; name them all.
    std::set<std::string_view> families;
    for (const auto& o : consumed.ops_) families.insert(o.column_family);
    std::string cfs;
    for (auto f : families) cfs += (cfs.empty() ? "" : ", ") + std::string(f);
    return status_error(s, "write of " + std::to_string(consumed.size()) + " operations", cfs,
                        impl_->dir);
  }
  return ok();
}

result<void> db::scan(std::string_view cf, std::string_view prefix, const visitor& visit) const {
  return scan_impl("scan", cf, prefix, visit, false);
}

result<void> db::scan_reverse(std::string_view cf, std::string_view prefix,
                              const visitor& visit) const {
  return scan_impl("scan_reverse", cf, prefix, visit, true);
}

result<void> db::scan_impl(std::string_view op, std::string_view cf, std::string_view prefix,
                           const visitor& visit, bool reverse) const {
  MESH_TRY(auto* h, impl_->handle(cf, op));
  const std::optional<std::string> upper = prefix_successor(prefix);
  const rocksdb::Slice lower_bound = slice(prefix);
  const rocksdb::Slice upper_bound = upper ? slice(*upper) : rocksdb::Slice();

  // The bounds only let RocksDB skip work (and tombstones) outside the range;
  // the starts_with check below is what defines the result.
  rocksdb::ReadOptions ro;
  if (!prefix.empty()) ro.iterate_lower_bound = &lower_bound;
  if (upper && !reverse) ro.iterate_upper_bound = &upper_bound;
  std::unique_ptr<rocksdb::Iterator> it(impl_->rdb->NewIterator(ro, h));

  if (!reverse) {
    it->Seek(lower_bound);
  } else if (upper) {
    // Last key <= successor; the successor itself is outside the prefix.
    it->SeekForPrev(upper_bound);
    if (it->Valid() && it->key() == upper_bound) it->Prev();
  } else {
    it->SeekToLast();
  }
  // Each step moves the iterator one key in one direction over a fixed
  // snapshot, so the loop ends.
  for (; it->Valid(); reverse ? it->Prev() : it->Next()) {
    const std::string_view key = view(it->key());
    if (!key.starts_with(prefix)) break;
    if (!visit(key, view(it->value()))) return ok();
  }
  if (!it->status().ok()) {
    return status_error(it->status(), std::string(op) + " of prefix " + printable(prefix), cf,
                        impl_->dir);
  }
  return ok();
}

result<void> db::flush() {
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  for (const auto& [name, h] : impl_->families) handles.push_back(h);
  auto s = impl_->rdb->Flush(rocksdb::FlushOptions(), handles);
  if (!s.ok()) return status_error(s, "flush", "(all)", impl_->dir);
  s = impl_->rdb->SyncWAL();
  if (!s.ok()) return status_error(s, "flush (WAL sync)", "(all)", impl_->dir);
  return ok();
}

std::vector<std::string> db::column_families() const {
  std::vector<std::string> names;
  for (const auto& [name, h] : impl_->families) names.push_back(name);
  return names;
}

const fs::path& db::dir() const { return impl_->dir; }

}  // namespace meshdeploy::storage

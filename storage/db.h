// The node's local database: RocksDB with one column family per record kind.
// This header is RocksDB-free (pimpl); only storage/db.cc sees RocksDB.
//
// Durability (see docs/storage.md "Durability"): every write goes to the
// write-ahead log before it returns, so a write that returned survives the
// process dying (kill -9) in either mode. durability::synced also fsyncs the
// log before returning, so the write (and every write before it) survives an
// OS crash or power loss. Reopening after an unclean shutdown replays the log
// up to the last complete record.
//
// Keys are compared as unsigned bytes (RocksDB's bytewise comparator); build
// structured keys with storage/key.h so that this order is meaningful.
#pragma once

#include "storage/result.h"

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::storage {

enum class durability {
  buffered,  // in the WAL (OS page cache) before returning: survives a process crash
  synced,    // WAL fsynced before returning: survives an OS crash too (journal writes)
};

// An atomic group of puts and erases, possibly across column families, applied
// by db::write all together or not at all. Operations apply in the order
// added (a later put or erase of the same key wins). Column family names are
// checked by db::write, not here.
// Thread safety: none; build it on one thread, then hand it to db::write.
class write_batch {
 public:
  write_batch();
  ~write_batch();
  write_batch(write_batch&&) noexcept;
  write_batch& operator=(write_batch&&) noexcept;
  write_batch(const write_batch&) = delete;
  write_batch& operator=(const write_batch&) = delete;

  // Copies the arguments; nothing is borrowed.
  void put(std::string_view column_family, std::string_view key, std::string_view value);
  void erase(std::string_view column_family, std::string_view key);
  [[nodiscard]] bool empty() const { return ops_.empty(); }
  // Number of operations added.
  [[nodiscard]] std::size_t size() const { return ops_.size(); }

 private:
  friend class db;
  struct op {
    bool is_put = true;
    std::string column_family;
    std::string key;
    std::string value;  // empty for erases
  };
  std::vector<op> ops_;
};

struct open_options {
  std::filesystem::path dir;  // created (with parents) if missing
  std::vector<std::string>
      column_families;  // "default" is always there; listed ones are created if missing
  // RocksDB memtable size per column family. It also sizes each write-ahead log file RocksDB
  // preallocates (about 1.1 times this), so it is kept small: a node's data is small, and tests
  // and simulators open hundreds of databases at once.
  std::size_t write_buffer_bytes = 4u << 20;
};

// Thread safety: after open, every method may be called concurrently from
// any thread (RocksDB is thread-safe and the set of column families is fixed
// at open). Callers serialise their own read-modify-write sequences.
// Not copyable or movable; owned through the unique_ptr from open().
class db {
 public:
  // Opens (creating if needed) the database in options.dir, with every listed
  // column family. Existing column families that are not listed are opened
  // too (so a downgrade never fails) and are usable by name.
  // Errors: invalid_argument for an empty dir or column family name; io_error
  // when the directory cannot be created, is not a database, or is locked by
  // another open db (in this or another process); corruption when RocksDB
  // finds damaged files. Messages name the directory and RocksDB's status.
  static result<std::unique_ptr<db>> open(const open_options& options);

  // Flushes memtables, syncs the WAL and closes. Errors here cannot be
  // reported; call flush() first to see them. No other thread may still be
  // using the db.
  ~db();

  // The value of `key`, or nullopt when absent.
  result<std::optional<std::string>> get(std::string_view cf, std::string_view key) const;
  result<void> put(std::string_view cf, std::string_view key, std::string_view value,
                   durability d = durability::buffered);
  // Erasing an absent key is not an error.
  result<void> erase(std::string_view cf, std::string_view key,
                     durability d = durability::buffered);
  // Applies every operation of `batch` atomically (all or nothing, also across
  // a crash). An unknown column family anywhere in the batch fails the whole
  // batch with invalid_argument before anything is written. An empty batch
  // is a no-op.
  result<void> write(write_batch&& batch, durability d = durability::buffered);

  // Visits keys starting with `prefix` in ascending byte order; `visit`
  // returns false to stop early. The views passed to `visit` are valid only
  // during that call. The scan sees one consistent snapshot; writes made from
  // `visit` are allowed but not seen. An empty prefix visits everything.
  using visitor = std::function<bool(std::string_view key, std::string_view value)>;
  result<void> scan(std::string_view cf, std::string_view prefix, const visitor& visit) const;
  // Like scan but visits in descending order (newest-first for big-endian counters).
  result<void> scan_reverse(std::string_view cf, std::string_view prefix,
                            const visitor& visit) const;

  // Writes memtables to table files and fsyncs the WAL. Not needed for
  // durability (see the top of this file); it makes the next open faster.
  result<void> flush();

  // Names of all open column families, sorted, including "default".
  [[nodiscard]] std::vector<std::string> column_families() const;
  [[nodiscard]] const std::filesystem::path& dir() const;

  db(const db&) = delete;
  db& operator=(const db&) = delete;

 private:
  struct impl;
  // Only open() can make one (a private type, so the constructor can be
  // public for std::make_unique).
  struct passkey {
    explicit passkey() = default;
  };

 public:
  db(passkey, std::unique_ptr<impl> impl);

 private:
  result<void> scan_impl(std::string_view op, std::string_view cf, std::string_view prefix,
                         const visitor& visit, bool reverse) const;

  std::unique_ptr<impl> impl_;
};

}  // namespace meshdeploy::storage

// Error codes of storage/ (the RocksDB wrapper and the key encoding). The
// code says which kind of failure it was; the message in `error` names the
// operation, column family, path and RocksDB's own status text. Numbered
// explicitly; values are only appended, never reused.
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace meshdeploy::storage {

enum class errc : int {
  ok = 0,
  io_error = 1,    // the filesystem or RocksDB failed to read/write/lock (message has the path)
  corruption = 2,  // stored bytes are damaged, or a key does not decode (key_reader)
  invalid_argument = 3,  // unknown column family, bad option or name (message names it)
  busy = 4,              // RocksDB asked to retry (Busy, TryAgain, TimedOut, Incomplete)
  not_supported = 5,     // the operation is not supported by this database
};

// The category named "meshdeploy.storage".
const boost::system::error_category& storage_category() noexcept;

boost::system::error_code make_error_code(errc e) noexcept;

}  // namespace meshdeploy::storage

namespace boost::system {
template <>
struct is_error_code_enum<meshdeploy::storage::errc> : std::true_type {};
}  // namespace boost::system

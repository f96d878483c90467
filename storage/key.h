// Order-preserving composite keys. A key is a sequence of typed components,
// each encoded so that comparing the encoded bytes (RocksDB's default
// bytewise order) compares the components one by one, like a tuple:
//
//   key().str("web").u64(7) < key().str("web").u64(8) < key().str("web2").u64(0)
//
// Because every component encoding is prefix-free, a finished key prefix
// selects exactly the keys that start with those components:
// `db.scan(cf, key().str(group), ...)` visits the records of `group` only,
// never those of a group whose name merely starts with `group`.
//
// Encoding (stable, stored on disk; see docs/storage.md "Key encoding"):
//   str: every byte as is, except 0x00 which becomes 0x00 0xFF; then the
//        terminator 0x00 0x01. (0x01 < 0xFF, so "a" < "a\0" as bytes.)
//   u64: 8 bytes, big-endian.
// Components carry no type tag: the reader must know the schema.
#pragma once

#include "storage/result.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace meshdeploy::storage {

// Builder. A plain value type; not thread-safe (no shared state).
class key {
 public:
  key() = default;

  // Appends a string component (any bytes, including 0x00 and 0xFF).
  key& str(std::string_view s);
  // Appends an unsigned integer component; ascending numbers give ascending keys.
  key& u64(std::uint64_t v);

  // The encoded bytes so far.
  [[nodiscard]] const std::string& bytes() const { return bytes_; }
  // Views bytes(); valid while this key lives and is not appended to.
  operator std::string_view() const { return bytes_; }

  bool operator==(const key&) const = default;

 private:
  std::string bytes_;
};

// Decoder for keys built with `key`. Reads components in the order they were
// written. `bytes` must outlive the reader (it is not copied).
// Thread safety: none (a cursor over borrowed bytes).
class key_reader {
 public:
  explicit key_reader(std::string_view bytes) : bytes_(bytes) {}

  // Reads a string component. errc::corruption (naming the byte offset) when
  // the input ends before the terminator or holds an escape other than
  // 0x00 0xFF / 0x00 0x01. On error the position is unchanged.
  result<std::string> str();
  // Reads a u64 component. errc::corruption when fewer than 8 bytes remain.
  // On error the position is unchanged.
  result<std::uint64_t> u64();
  // True when every byte has been consumed.
  [[nodiscard]] bool done() const { return pos_ == bytes_.size(); }
  // The bytes not read yet.
  [[nodiscard]] std::string_view rest() const { return bytes_.substr(pos_); }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

}  // namespace meshdeploy::storage

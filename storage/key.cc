#include "storage/key.h"

#include "storage/errc.h"

#include <string>

namespace meshdeploy::storage {
namespace {

constexpr char escape_byte = '\x00';
constexpr char escaped_zero = '\xff';  // 0x00 0xFF: a literal 0x00 inside the string
constexpr char terminator = '\x01';    // 0x00 0x01: end of the string component

std::string hex_byte(char c) {
  constexpr std::string_view digits = "0123456789abcdef";
  const auto b = static_cast<unsigned char>(c);
  return {'0', 'x', digits[b >> 4], digits[b & 0xf]};
}

}  // namespace

key& key::str(std::string_view s) {
  bytes_.reserve(bytes_.size() + s.size() + 2);
  for (char c : s) {
    bytes_.push_back(c);
    if (c == escape_byte) bytes_.push_back(escaped_zero);
  }
  bytes_.push_back(escape_byte);
  bytes_.push_back(terminator);
  return *this;
}

key& key::u64(std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    bytes_.push_back(static_cast<char>((v >> shift) & 0xff));
  }
  return *this;
}

result<std::string> key_reader::str() {
  std::string out;
  std::size_t i = pos_;
  // Each iteration consumes one byte, so the loop ends within bytes_.size() steps.
  while (i < bytes_.size()) {
    const char c = bytes_[i];
    if (c != escape_byte) {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= bytes_.size()) {
      return make_error(errc::corruption,
                        "key: string component starting at byte " + std::to_string(pos_) +
                            " ends inside an escape at byte " + std::to_string(i));
    }
    const char next = bytes_[i + 1];
    if (next == terminator) {
      pos_ = i + 2;
      return out;
    }
    if (next != escaped_zero) {
      return make_error(errc::corruption, "key: invalid escape 0x00 " + hex_byte(next) +
                                              " at byte " + std::to_string(i));
    }
    out.push_back(escape_byte);
    i += 2;
  }
  return make_error(errc::corruption, "key: string component starting at byte " +
                                          std::to_string(pos_) + " has no terminator (key is " +
                                          std::to_string(bytes_.size()) + " bytes)");
}

result<std::uint64_t> key_reader::u64() {
  if (bytes_.size() - pos_ < 8) {
    return make_error(errc::corruption, "key: u64 component at byte " + std::to_string(pos_) +
                                            " needs 8 bytes, " +
                                            std::to_string(bytes_.size() - pos_) + " left");
  }
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    v = (v << 8) | static_cast<unsigned char>(bytes_[pos_ + i]);
  }
  pos_ += 8;
  return v;
}

}  // namespace meshdeploy::storage

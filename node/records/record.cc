#include "node/records/record.h"

#include "node/records/errc.h"

#include <fmt/format.h>
#include <msgpack.hpp>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <exception>

namespace meshdeploy::records {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

constexpr std::string_view signing_domain{"meshdeploy/record/v1\0", 21};

void pack_bin(packer& p, const void* data, std::size_t n) {
  p.pack_bin(static_cast<std::uint32_t>(n));
  p.pack_bin_body(static_cast<const char*>(data), static_cast<std::uint32_t>(n));
}

// The first eight elements, shared by encode() and signing_bytes().
void pack_unsigned(packer& p, const record& r, std::uint32_t array_size) {
  p.pack_array(array_size);
  p.pack(record_format);
  p.pack(static_cast<std::uint8_t>(r.type));
  p.pack(r.key);
  p.pack(r.version);
  pack_bin(p, r.writer.data(), r.writer.size());
  p.pack(r.time_ms);
  p.pack(r.via);
  pack_bin(p, r.payload.data(), r.payload.size());
}

std::vector<std::byte> to_bytes(const msgpack::sbuffer& buf, std::string_view prefix = {}) {
  std::vector<std::byte> out(prefix.size() + buf.size());
  // memcpy with a null pointer is undefined even for 0 bytes (an empty prefix has none).
  if (!prefix.empty()) std::memcpy(out.data(), prefix.data(), prefix.size());
  if (buf.size() != 0) std::memcpy(out.data() + prefix.size(), buf.data(), buf.size());
  return out;
}

error bad(errc e, std::string what) { return make_error(e, "record: " + std::move(what)); }

template <class T>
result<T> as(const msgpack::object& o, const char* field) {
  try {
    return o.as<T>();
  } catch (const std::exception&) {
    return bad(errc::malformed, fmt::format("field {} has the wrong type", field));
  }
}

result<std::string> as_str(const msgpack::object& o, const char* field, std::size_t limit) {
  if (o.type != msgpack::type::STR) {
    return bad(errc::malformed, fmt::format("field {} is not a string", field));
  }
  if (o.via.str.size > limit) {
    return bad(errc::too_large,
               fmt::format("field {} is {} bytes, limit {}", field, o.via.str.size, limit));
  }
  return std::string(o.via.str.ptr, o.via.str.size);
}

template <std::size_t N>
result<std::array<std::uint8_t, N>> as_fixed_bin(const msgpack::object& o, const char* field) {
  if (o.type != msgpack::type::BIN || o.via.bin.size != N) {
    return bad(errc::malformed, fmt::format("field {} is not {} bytes of bin", field, N));
  }
  std::array<std::uint8_t, N> out{};
  std::memcpy(out.data(), o.via.bin.ptr, N);
  return out;
}

}  // namespace

std::string_view to_string(record_type t) {
  switch (t) {
    case record_type::grant:
      return "grant";
    case record_type::application:
      return "application";
    case record_type::group:
      return "group";
    case record_type::config:
      return "config";
    case record_type::revision:
      return "revision";
    case record_type::intent:
      return "intent";
    case record_type::approval:
      return "approval";
    case record_type::progress:
      return "progress";
    case record_type::stop:
      return "stop";
    case record_type::exclude:
      return "exclude";
    case record_type::host:
      return "host";
  }
  return "unknown";
}

bool is_versioned(record_type t) {
  switch (t) {
    case record_type::grant:
    case record_type::application:
    case record_type::group:
    case record_type::config:
    case record_type::progress:
      return true;
    default:
      return false;
  }
}

std::vector<std::byte> signing_bytes(const record& r) {
  msgpack::sbuffer buf;
  packer p(buf);
  pack_unsigned(p, r, 8);
  return to_bytes(buf, signing_domain);
}

std::vector<std::byte> encode(const record& r) {
  msgpack::sbuffer buf;
  packer p(buf);
  pack_unsigned(p, r, 9);
  pack_bin(p, r.sig.data(), r.sig.size());
  return to_bytes(buf);
}

result<record> decode(std::span<const std::byte> bytes) {
  if (bytes.size() > max_record_bytes) {
    return bad(errc::too_large, fmt::format("{} bytes, limit {}", bytes.size(), max_record_bytes));
  }
  msgpack::object_handle oh;
  try {
    std::size_t off = 0;
    // Limits keep a hostile input from making the parser allocate much.
    msgpack::unpack_limit limit(16, 0, max_record_bytes, max_record_bytes, 0, 4);
    oh = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), off, nullptr,
                         nullptr, limit);
    if (off != bytes.size()) return bad(errc::malformed, "trailing bytes after the record");
  } catch (const std::exception& e) {
    return bad(errc::malformed, fmt::format("not msgpack ({})", e.what()));
  }
  const msgpack::object& o = oh.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 1) {
    return bad(errc::malformed, "not an array");
  }
  const msgpack::object* f = o.via.array.ptr;
  MESH_TRY(auto format, as<std::uint8_t>(f[0], "format"));
  if (format != record_format) {
    return bad(errc::version_unsupported,
               fmt::format("format {} (this build reads {})", format, record_format));
  }
  if (o.via.array.size != 9) {
    return bad(errc::malformed, fmt::format("{} fields, expected 9", o.via.array.size));
  }
  record r;
  MESH_TRY(auto type, as<std::uint8_t>(f[1], "type"));
  if (type == 0 || type > max_record_type) {
    return bad(errc::malformed, fmt::format("unknown type {}", type));
  }
  r.type = static_cast<record_type>(type);
  MESH_TRY(r.key, as_str(f[2], "key", max_key_bytes));
  if (r.key.empty()) return bad(errc::malformed, "field key is empty");
  MESH_TRY(r.version, as<std::uint64_t>(f[3], "version"));
  if (r.version == 0) return bad(errc::malformed, "field version is 0");
  MESH_TRY(r.writer, as_fixed_bin<public_key_bytes>(f[4], "writer"));
  MESH_TRY(r.time_ms, as<std::int64_t>(f[5], "time_ms"));
  MESH_TRY(r.via, as_str(f[6], "via", max_via_bytes));
  if (f[7].type != msgpack::type::BIN) return bad(errc::malformed, "field payload is not bin");
  if (f[7].via.bin.size > max_payload_bytes) {
    return bad(errc::too_large,
               fmt::format("payload is {} bytes, limit {}", f[7].via.bin.size, max_payload_bytes));
  }
  const auto* pb = reinterpret_cast<const std::byte*>(f[7].via.bin.ptr);
  r.payload.assign(pb, pb + f[7].via.bin.size);
  MESH_TRY(r.sig, as_fixed_bin<signature_bytes>(f[8], "signature"));
  return r;
}

record_hash hash_of_encoded(std::span<const std::byte> encoded) {
  record_hash h{};
  crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(encoded.data()),
                     encoded.size(), nullptr, 0);
  return h;
}

record_hash hash_of(const record& r) { return hash_of_encoded(encode(r)); }

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

result<std::vector<std::uint8_t>> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return bad(errc::malformed, "hex string of odd length");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<std::uint8_t> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return bad(errc::malformed, fmt::format("not a hex digit at offset {}", 2 * i));
    }
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return out;
}

result<public_key> public_key_from_hex(std::string_view hex) {
  MESH_TRY(auto bytes, from_hex(hex));
  if (bytes.size() != public_key_bytes) {
    return bad(errc::malformed,
               fmt::format("public key is {} bytes, expected {}", bytes.size(), public_key_bytes));
  }
  public_key k{};
  std::copy(bytes.begin(), bytes.end(), k.begin());
  return k;
}

bool supersedes(const record& a, const record& b) {
  if (a.version != b.version) return a.version > b.version;
  return hash_of(a) < hash_of(b);
}

}  // namespace meshdeploy::records

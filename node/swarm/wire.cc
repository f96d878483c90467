#include "node/swarm/wire.h"

#include "gossip/byte_sink.h"
#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <msgpack.hpp>

#include <cstring>
#include <optional>

namespace meshdeploy::swarm {

namespace {

using packer = msgpack::packer<gossip::byte_sink>;
constexpr std::size_t max_bits_bytes = max_pieces / 8;

enum class type : std::uint8_t {
  hello = 1,
  have = 2,
  request = 3,
  piece = 4,
  none = 5,
  busy = 6,
  manifest_request = 7,
  manifest = 8,
};

error bad(std::string what) {
  return make_error(deploy::errc::invalid_argument, "swarm message: " + std::move(what));
}

void head(packer& p, std::uint32_t fields, type t) {
  p.pack_array(fields);
  p.pack(swarm_protocol_version);
  p.pack(static_cast<std::uint8_t>(t));
}

void pack_bin(packer& p, std::span<const std::byte> b) {
  p.pack_bin(static_cast<std::uint32_t>(b.size()));
  p.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<std::uint32_t>(b.size()));
}

struct fields {
  const msgpack::object* f;
  std::uint32_t n;

  result<std::string> text(std::uint32_t i, const char* name, std::size_t limit) const {
    const auto& o = f[i];
    if (o.type != msgpack::type::STR) return bad(fmt::format("{} is not a string", name));
    if (o.via.str.size > limit) {
      return bad(fmt::format("{} is {} bytes (at most {})", name, o.via.str.size, limit));
    }
    return std::string(o.via.str.ptr, o.via.str.size);
  }
  result<std::string> id(std::uint32_t i) const {
    MESH_TRY(auto s, text(i, "bundle id", bundle_id_chars));
    bool hex = s.size() == bundle_id_chars;
    for (char c : s) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!hex) return bad("bundle id is not 64 lowercase hex digits");
    return s;
  }
  result<std::uint32_t> u32(std::uint32_t i, const char* name) const {
    const auto& o = f[i];
    if (o.type != msgpack::type::POSITIVE_INTEGER || o.via.u64 > 0xffffffffu) {
      return bad(fmt::format("{} is not a 32-bit unsigned integer", name));
    }
    return static_cast<std::uint32_t>(o.via.u64);
  }
  // A view into the decoded bytes (the unpack references them).
  result<std::span<const std::byte>> bin_view(std::uint32_t i, const char* name, std::size_t min,
                                              std::size_t limit) const {
    const auto& o = f[i];
    if (o.type != msgpack::type::BIN) return bad(fmt::format("{} is not binary", name));
    if (o.via.bin.size < min || o.via.bin.size > limit) {
      return bad(
          fmt::format("{} is {} bytes (must be {} to {})", name, o.via.bin.size, min, limit));
    }
    return std::span<const std::byte>(reinterpret_cast<const std::byte*>(o.via.bin.ptr),
                                      o.via.bin.size);
  }
  result<std::vector<std::byte>> bin(std::uint32_t i, const char* name, std::size_t min,
                                     std::size_t limit) const {
    MESH_TRY(auto v, bin_view(i, name, min, limit));
    return std::vector<std::byte>(v.begin(), v.end());
  }
};

// msgpack-c's reference function: strings and binaries point into the input instead of being
// copied into the handle's zone (their size limits are the decoder's own field checks); ext
// objects are still copied, so the unpack limit of 0 ext bytes keeps refusing them.
bool reference_str_bin(msgpack::type::object_type t, std::size_t, void*) {
  return t == msgpack::type::STR || t == msgpack::type::BIN;
}

// A piece message up to and including its data's bin header: the data follows.
void pack_piece_head(packer& p, const std::string& id, std::uint32_t index, std::size_t size) {
  head(p, 5, type::piece);
  p.pack(id);
  p.pack(index);
  p.pack_bin(static_cast<std::uint32_t>(size));
}

}  // namespace

std::vector<std::byte> encode_swarm_message(const swarm_message& m) {
  // Packed straight into the returned vector, sized up front: a piece's bytes are copied once.
  std::vector<std::byte> out;
  const auto* piece = std::get_if<piece_msg>(&m);
  const auto* man = std::get_if<manifest_msg>(&m);
  out.reserve(piece != nullptr ? piece->data.size() + 256
                               : (man != nullptr ? man->bytes.size() + 256 : 256));
  gossip::byte_sink b{out};
  packer p(b);
  std::visit(
      [&p](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, hello_msg>) {
          head(p, 6, type::hello);
          p.pack(v.app);
          p.pack(v.id);
          pack_bin(p, v.bits);
          p.pack(v.reply);
        } else if constexpr (std::is_same_v<T, have_msg>) {
          head(p, 4, type::have);
          p.pack(v.id);
          p.pack(v.index);
        } else if constexpr (std::is_same_v<T, request_msg>) {
          head(p, 5, type::request);
          p.pack(v.id);
          p.pack(v.index);
          p.pack(v.only_you);
        } else if constexpr (std::is_same_v<T, piece_msg>) {
          pack_piece_head(p, v.id, v.index, v.data.size());
          p.pack_bin_body(reinterpret_cast<const char*>(v.data.data()),
                          static_cast<std::uint32_t>(v.data.size()));
        } else if constexpr (std::is_same_v<T, none_msg>) {
          head(p, 3, type::none);
          p.pack(v.id);
        } else if constexpr (std::is_same_v<T, busy_msg>) {
          head(p, 4, type::busy);
          p.pack(v.id);
          p.pack(v.index);
        } else if constexpr (std::is_same_v<T, manifest_request_msg>) {
          head(p, 4, type::manifest_request);
          p.pack(v.app);
          p.pack(v.id);
        } else {
          static_assert(std::is_same_v<T, manifest_msg>);
          head(p, 4, type::manifest);
          p.pack(v.id);
          pack_bin(p, v.bytes);
        }
      },
      m);
  return out;
}

void prepend_piece_header(gossip::frame_buffer& data, const std::string& id, std::uint32_t index) {
  std::vector<std::byte> out;
  out.reserve(128);
  gossip::byte_sink b{out};
  packer p(b);
  pack_piece_head(p, id, index, data.size());
  data.prepend(out);
}

result<swarm_message> decode_swarm_message(std::span<const std::byte> bytes) {
  MESH_TRY(auto v, decode_swarm_view(bytes));
  return std::visit(
      [](auto&& m) -> swarm_message {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, piece_view>) {
          return piece_msg{std::move(m.id), m.index,
                           std::vector<std::byte>(m.data.begin(), m.data.end())};
        } else {
          return std::move(m);
        }
      },
      std::move(v));
}

result<swarm_message_view> decode_swarm_view(std::span<const std::byte> bytes) {
  if (bytes.size() > max_swarm_wire_bytes) {
    return bad(fmt::format("{} bytes (at most {})", bytes.size(), max_swarm_wire_bytes));
  }
  msgpack::object_handle h;
  try {
    std::size_t off = 0;
    // At most 6 array elements, no maps, strings and binaries within the message size, depth 2.
    const msgpack::unpack_limit limit(8, 0, max_swarm_wire_bytes, max_swarm_wire_bytes, 0, 2);
    // Strings and binaries reference `bytes` rather than being copied into the handle's zone:
    // what is kept is copied out below, except a piece's data (a view into `bytes`).
    h = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), off,
                        reference_str_bin, nullptr, limit);
    if (off != bytes.size()) return bad("trailing bytes after the message");
  } catch (const std::exception& e) {
    return bad(fmt::format("not msgpack ({})", e.what()));
  }
  const msgpack::object& o = h.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 3) {
    return bad("not an array of at least 3 fields");
  }
  const fields f{o.via.array.ptr, o.via.array.size};
  MESH_TRY(auto version, f.u32(0, "version"));
  if (version != swarm_protocol_version) {
    return bad(
        fmt::format("protocol version {} (this node speaks {})", version, swarm_protocol_version));
  }
  MESH_TRY(auto t, f.u32(1, "type"));
  auto want = [&f](std::uint32_t n, const char* name) -> result<void> {
    if (f.n != n) return bad(fmt::format("{} has {} fields (expected {})", name, f.n, n));
    return ok();
  };
  switch (static_cast<type>(t)) {
    case type::hello: {
      MESH_CHECK(want(6, "hello"));
      hello_msg m;
      MESH_TRY(m.app, f.text(2, "app", max_app_bytes));
      MESH_TRY(m.id, f.id(3));
      MESH_TRY(m.bits, f.bin(4, "bits", 0, max_bits_bytes));
      if (f.f[5].type != msgpack::type::BOOLEAN) return bad("hello's reply flag is not a bool");
      m.reply = f.f[5].via.boolean;
      return swarm_message_view{std::move(m)};
    }
    case type::have:
    case type::busy: {
      MESH_CHECK(want(4, "have/busy"));
      MESH_TRY(auto id, f.id(2));
      MESH_TRY(auto index, f.u32(3, "piece index"));
      if (static_cast<type>(t) == type::have)
        return swarm_message_view{have_msg{std::move(id), index}};
      return swarm_message_view{busy_msg{std::move(id), index}};
    }
    case type::request: {
      MESH_CHECK(want(5, "request"));
      request_msg m;
      MESH_TRY(m.id, f.id(2));
      MESH_TRY(m.index, f.u32(3, "piece index"));
      if (f.f[4].type != msgpack::type::BOOLEAN)
        return bad("request's only_you flag is not a bool");
      m.only_you = f.f[4].via.boolean;
      return swarm_message_view{std::move(m)};
    }
    case type::piece: {
      MESH_CHECK(want(5, "piece"));
      piece_view m;
      MESH_TRY(m.id, f.id(2));
      MESH_TRY(m.index, f.u32(3, "piece index"));
      MESH_TRY(m.data, f.bin_view(4, "piece data", 1, max_piece_size));
      return swarm_message_view{std::move(m)};
    }
    case type::none: {
      MESH_CHECK(want(3, "none"));
      MESH_TRY(auto id, f.id(2));
      return swarm_message_view{none_msg{std::move(id)}};
    }
    case type::manifest_request: {
      MESH_CHECK(want(4, "manifest request"));
      manifest_request_msg m;
      MESH_TRY(m.app, f.text(2, "app", max_app_bytes));
      MESH_TRY(m.id, f.id(3));
      return swarm_message_view{std::move(m)};
    }
    case type::manifest: {
      MESH_CHECK(want(4, "manifest"));
      manifest_msg m;
      MESH_TRY(m.id, f.id(2));
      MESH_TRY(m.bytes, f.bin(3, "manifest", 1, max_manifest_bytes));
      return swarm_message_view{std::move(m)};
    }
  }
  return bad(fmt::format("unknown type {}", t));
}

std::vector<std::byte> make_bits(const std::vector<bool>& held) {
  std::vector<std::byte> out((held.size() + 7) / 8);
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (held[i]) out[i / 8] |= std::byte{static_cast<unsigned char>(0x80u >> (i % 8))};
  }
  return out;
}

bool bits_get(std::span<const std::byte> bits, std::size_t index) {
  if (index / 8 >= bits.size()) return false;
  return (std::to_integer<unsigned>(bits[index / 8]) & (0x80u >> (index % 8))) != 0;
}

}  // namespace meshdeploy::swarm

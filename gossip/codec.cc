#include "gossip/codec.h"

#include "gossip/byte_sink.h"
#include "gossip/errc.h"
#include "gossip/frame_buffer.h"

#include <fmt/format.h>
#include <msgpack.hpp>

#include <exception>
#include <string_view>
#include <type_traits>

namespace meshdeploy::gossip {
namespace {

using packer = msgpack::packer<byte_sink>;

// ---- encoding -------------------------------------------------------------------------------

void put(packer& p, const address& a) {
  p.pack_array(2);
  p.pack(a.host);
  p.pack(a.port);
}

void put(packer& p, const node_meta& m) {
  p.pack_array(5);
  p.pack(m.name);
  put(p, m.addr);
  p.pack_map(static_cast<std::uint32_t>(m.tags.size()));
  for (const auto& [k, v] : m.tags) {
    p.pack(k);
    p.pack(v);
  }
  p.pack(m.protocol_min);
  p.pack(m.protocol_max);
}

void put_body(packer& p, const ping_msg& m) {
  p.pack_array(4);
  p.pack(m.seq);
  p.pack(m.target);
  p.pack(m.source_name);
  put(p, m.source);
}

void put_body(packer& p, const ping_req_msg& m) {
  p.pack_array(6);
  p.pack(m.seq);
  p.pack(m.target);
  put(p, m.target_addr);
  p.pack(m.source_name);
  put(p, m.source);
  p.pack(m.want_nack);
}

void put_body(packer& p, const ack_msg& m) {
  p.pack_array(1);
  p.pack(m.seq);
}

void put_body(packer& p, const nack_msg& m) {
  p.pack_array(1);
  p.pack(m.seq);
}

void put_body(packer& p, const suspect_msg& m) {
  p.pack_array(3);
  p.pack(m.inc.value());
  p.pack(m.node);
  p.pack(m.from);
}

void put_body(packer& p, const alive_msg& m) {
  p.pack_array(2);
  p.pack(m.inc.value());
  put(p, m.meta);
}

void put_body(packer& p, const dead_msg& m) {
  p.pack_array(3);
  p.pack(m.inc.value());
  p.pack(m.node);
  p.pack(m.from);
}

void put_body(packer& p, const push_pull_msg& m) {
  p.pack_array(5);
  p.pack(m.join);
  p.pack(m.reply_wanted);
  p.pack(m.from);
  put(p, m.from_addr);
  p.pack_array(static_cast<std::uint32_t>(m.members.size()));
  for (const auto& mem : m.members) {
    p.pack_array(3);
    put(p, mem.meta);
    p.pack(mem.inc.value());
    p.pack(static_cast<std::uint8_t>(mem.state));
  }
}

void put_body(packer& p, const user_msg& m) {
  p.pack_array(4);
  p.pack(m.origin);
  p.pack(m.id);
  p.pack(m.user_type);
  p.pack_bin(static_cast<std::uint32_t>(m.payload.size()));
  p.pack_bin_body(reinterpret_cast<const char*>(m.payload.data()),
                  static_cast<std::uint32_t>(m.payload.size()));
}

void put_body(packer& p, const digest_msg& m) {
  p.pack_array(4);
  p.pack(m.from);
  put(p, m.from_addr);
  p.pack(m.hash);
  p.pack(m.count);
}

// A direct message's body up to and including its payload's bin header: the payload's bytes
// follow (encode packs them behind; prepend_direct finds them already in place).
void put_direct_head(packer& p, const std::string& from, const address& from_addr,
                     std::uint8_t user_type, std::size_t payload_size) {
  p.pack_array(4);
  p.pack(from);
  put(p, from_addr);
  p.pack(user_type);
  p.pack_bin(static_cast<std::uint32_t>(payload_size));
}

void put_body(packer& p, const direct_msg& m) {
  put_direct_head(p, m.from, m.from_addr, m.user_type, m.payload.size());
  p.pack_bin_body(reinterpret_cast<const char*>(m.payload.data()),
                  static_cast<std::uint32_t>(m.payload.size()));
}

void put_envelope(byte_sink& buf, msg_type t) {
  const char head[2] = {static_cast<char>(envelope_magic | protocol_version_max),
                        static_cast<char>(t)};
  buf.write(head, 2);
}

// ---- decoding -------------------------------------------------------------------------------

// The name of a field in error messages ("meta.addr.port", "members[3].state"): a chain of parts
// turned into a string only when an error is reported, so decoding a valid message formats
// nothing. A label refers to its parent and parts: it lives only during the call it is made for.
class label {
 public:
  label(const char* s) : part_(s) {}         // NOLINT(google-explicit-constructor)
  label(std::string_view s) : part_(s) {}    // NOLINT(google-explicit-constructor)
  label(const std::string& s) : part_(s) {}  // NOLINT(google-explicit-constructor)
  label(const label& parent, std::string_view part) : parent_(&parent), part_(part) {}
  label(std::string_view part, std::size_t index) : part_(part), index_(index), indexed_(true) {}

  [[nodiscard]] std::string str() const {
    std::string out = parent_ ? parent_->str() : std::string();
    out += part_;
    if (indexed_) out += fmt::format("[{}]", index_);
    return out;
  }

 private:
  const label* parent_ = nullptr;
  std::string_view part_;
  std::size_t index_ = 0;
  bool indexed_ = false;
};

// Walks a msgpack::object tree with type and limit checks; the first problem becomes the
// error, named by `where` (message type and field).
class reader {
 public:
  explicit reader(std::string_view msg) : msg_(msg) {}

  [[nodiscard]] bool failed() const { return failed_; }
  [[nodiscard]] error err() const { return make_error(code_, message_); }

  // The positional fields of a body: an array of at least `n` elements (extras are ignored:
  // newer versions may append fields).
  const msgpack::object* fields(const msgpack::object& o, std::size_t n, const label& where) {
    if (o.type != msgpack::type::ARRAY) return fail_type(where, "array");
    if (o.via.array.size < n) {
      fail(errc::malformed,
           fmt::format("{}: {} fields, want at least {}", where.str(), o.via.array.size, n));
      return nullptr;
    }
    return o.via.array.ptr;
  }

  template <class Int>
  Int uint(const msgpack::object& o, const label& where) {
    if (o.type != msgpack::type::POSITIVE_INTEGER) {
      fail_type(where, "unsigned integer");
      return 0;
    }
    if (o.via.u64 > std::numeric_limits<Int>::max()) {
      fail(errc::malformed, fmt::format("{}: {} out of range", where.str(), o.via.u64));
      return 0;
    }
    return static_cast<Int>(o.via.u64);
  }

  bool boolean(const msgpack::object& o, const label& where) {
    if (o.type != msgpack::type::BOOLEAN) {
      fail_type(where, "boolean");
      return false;
    }
    return o.via.boolean;
  }

  std::string str(const msgpack::object& o, const label& where, std::size_t max,
                  bool allow_empty = true) {
    if (o.type != msgpack::type::STR) {
      fail_type(where, "string");
      return {};
    }
    if (o.via.str.size > max) {
      fail(errc::too_large,
           fmt::format("{}: {} bytes, limit {}", where.str(), o.via.str.size, max));
      return {};
    }
    if (!allow_empty && o.via.str.size == 0) {
      fail(errc::malformed, fmt::format("{}: empty", where.str()));
      return {};
    }
    return std::string(o.via.str.ptr, o.via.str.size);
  }

  // A view of a binary field: into the decoded bytes (unpack_one references them).
  std::span<const std::byte> bin_view(const msgpack::object& o, const label& where,
                                      std::size_t max) {
    if (o.type != msgpack::type::BIN) {
      fail_type(where, "binary");
      return {};
    }
    if (o.via.bin.size > max) {
      fail(errc::too_large,
           fmt::format("{}: {} bytes, limit {}", where.str(), o.via.bin.size, max));
      return {};
    }
    return {reinterpret_cast<const std::byte*>(o.via.bin.ptr), o.via.bin.size};
  }

  std::vector<std::byte> bin(const msgpack::object& o, const label& where, std::size_t max) {
    const auto v = bin_view(o, where, max);
    return {v.begin(), v.end()};
  }

  address addr(const msgpack::object& o, const label& where) {
    const auto* f = fields(o, 2, where);
    if (!f) return {};
    address a;
    a.host = str(f[0], label(where, ".host"), max_host_bytes);
    a.port = uint<std::uint16_t>(f[1], label(where, ".port"));
    return a;
  }

  node_meta meta(const msgpack::object& o, const label& where) {
    node_meta m;
    const auto* f = fields(o, 5, where);
    if (!f) return m;
    m.name = str(f[0], label(where, ".name"), max_name_bytes, false);
    m.addr = addr(f[1], label(where, ".addr"));
    const auto& tags = f[2];
    if (tags.type != msgpack::type::MAP) {
      fail_type(label(where, ".tags"), "map");
      return m;
    }
    if (tags.via.map.size > max_tags) {
      fail(errc::too_large,
           fmt::format("{}.tags: {} tags, limit {}", where.str(), tags.via.map.size, max_tags));
      return m;
    }
    for (std::uint32_t i = 0; i < tags.via.map.size && !failed_; ++i) {
      auto k = str(tags.via.map.ptr[i].key, label(where, ".tags key"), max_tag_key_bytes, false);
      auto v = str(tags.via.map.ptr[i].val, label(where, ".tags value"), max_tag_value_bytes);
      if (!failed_ && !m.tags.emplace(std::move(k), std::move(v)).second) {
        fail(errc::malformed, fmt::format("{}.tags: duplicate key", where.str()));
      }
    }
    m.protocol_min = uint<std::uint8_t>(f[3], label(where, ".protocol_min"));
    m.protocol_max = uint<std::uint8_t>(f[4], label(where, ".protocol_max"));
    if (!failed_ && m.protocol_min > m.protocol_max) {
      fail(errc::malformed, fmt::format("{}: protocol_min {} > protocol_max {}", where.str(),
                                        m.protocol_min, m.protocol_max));
    }
    return m;
  }

  void fail(errc c, std::string message) {
    if (failed_) return;  // keep the first, most specific problem
    failed_ = true;
    code_ = c;
    message_ = fmt::format("{} message: {}", msg_, message);
  }

 private:
  std::nullptr_t fail_type(const label& where, std::string_view want) {
    fail(errc::malformed, fmt::format("{}: expected {}", where.str(), want));
    return nullptr;
  }

  std::string_view msg_;
  bool failed_ = false;
  errc code_ = errc::malformed;
  std::string message_;
};

// A direct message's body; the payload views the decoded bytes.
result<direct_view> read_direct(const msgpack::object& o) {
  reader r("direct");
  direct_view m;
  if (const auto* f = r.fields(o, 4, "body")) {
    m.from = r.str(f[0], "from", max_name_bytes, false);
    m.from_addr = r.addr(f[1], "from_addr");
    m.user_type = r.uint<std::uint8_t>(f[2], "user_type");
    m.payload = r.bin_view(f[3], "payload", max_direct_payload_bytes);
  }
  if (r.failed()) return r.err();
  return m;
}

result<message> decode_body(msg_type t, const msgpack::object& o, channel ch) {
  switch (t) {
    case msg_type::ping: {
      reader r("ping");
      ping_msg m;
      if (const auto* f = r.fields(o, 4, "body")) {
        m.seq = r.uint<std::uint32_t>(f[0], "seq");
        m.target = r.str(f[1], "target", max_name_bytes);
        m.source_name = r.str(f[2], "source_name", max_name_bytes);
        m.source = r.addr(f[3], "source");
      }
      if (r.failed()) return r.err();
      return message{std::move(m)};
    }
    case msg_type::ping_req: {
      reader r("ping_req");
      ping_req_msg m;
      if (const auto* f = r.fields(o, 6, "body")) {
        m.seq = r.uint<std::uint32_t>(f[0], "seq");
        m.target = r.str(f[1], "target", max_name_bytes, false);
        m.target_addr = r.addr(f[2], "target_addr");
        m.source_name = r.str(f[3], "source_name", max_name_bytes);
        m.source = r.addr(f[4], "source");
        m.want_nack = r.boolean(f[5], "want_nack");
      }
      if (r.failed()) return r.err();
      return message{std::move(m)};
    }
    case msg_type::ack:
    case msg_type::nack: {
      reader r(t == msg_type::ack ? "ack" : "nack");
      std::uint32_t seq = 0;
      if (const auto* f = r.fields(o, 1, "body")) seq = r.uint<std::uint32_t>(f[0], "seq");
      if (r.failed()) return r.err();
      if (t == msg_type::ack) return message{ack_msg{seq}};
      return message{nack_msg{seq}};
    }
    case msg_type::suspect:
    case msg_type::dead: {
      reader r(t == msg_type::suspect ? "suspect" : "dead");
      std::uint64_t inc = 0;
      std::string node, from;
      if (const auto* f = r.fields(o, 3, "body")) {
        inc = r.uint<std::uint64_t>(f[0], "incarnation");
        node = r.str(f[1], "node", max_name_bytes, false);
        from = r.str(f[2], "from", max_name_bytes, false);
      }
      if (r.failed()) return r.err();
      if (t == msg_type::suspect) {
        return message{suspect_msg{incarnation(inc), std::move(node), std::move(from)}};
      }
      return message{dead_msg{incarnation(inc), std::move(node), std::move(from)}};
    }
    case msg_type::alive: {
      reader r("alive");
      alive_msg m;
      if (const auto* f = r.fields(o, 2, "body")) {
        m.inc = incarnation(r.uint<std::uint64_t>(f[0], "incarnation"));
        m.meta = r.meta(f[1], "meta");
      }
      if (r.failed()) return r.err();
      return message{std::move(m)};
    }
    case msg_type::push_pull: {
      reader r("push_pull");
      if (ch != channel::stream) {
        return make_error(errc::unknown_type, "push_pull message: only allowed on a stream");
      }
      push_pull_msg m;
      if (const auto* f = r.fields(o, 5, "body")) {
        m.join = r.boolean(f[0], "join");
        m.reply_wanted = r.boolean(f[1], "reply_wanted");
        m.from = r.str(f[2], "from", max_name_bytes, false);
        m.from_addr = r.addr(f[3], "from_addr");
        const auto& arr = f[4];
        if (arr.type != msgpack::type::ARRAY) {
          r.fail(errc::malformed, "members: expected array");
        } else if (arr.via.array.size > max_state_members) {
          r.fail(errc::too_large, fmt::format("members: {} entries, limit {}", arr.via.array.size,
                                              max_state_members));
        } else {
          m.members.reserve(arr.via.array.size);
          for (std::uint32_t i = 0; i < arr.via.array.size && !r.failed(); ++i) {
            const label where("members", i);
            const auto* mf = r.fields(arr.via.array.ptr[i], 3, where);
            if (!mf) break;
            member mem;
            mem.meta = r.meta(mf[0], label(where, ".meta"));
            mem.inc = incarnation(r.uint<std::uint64_t>(mf[1], label(where, ".incarnation")));
            const auto st = r.uint<std::uint8_t>(mf[2], label(where, ".state"));
            if (!r.failed() && st > static_cast<std::uint8_t>(member_state::left)) {
              r.fail(errc::malformed, fmt::format("{}.state: unknown state {}", where.str(), st));
            }
            mem.state = static_cast<member_state>(st);
            m.members.push_back(std::move(mem));
          }
        }
      }
      if (r.failed()) return r.err();
      return message{std::move(m)};
    }
    case msg_type::user: {
      reader r("user");
      user_msg m;
      if (const auto* f = r.fields(o, 4, "body")) {
        m.origin = r.str(f[0], "origin", max_name_bytes, false);
        m.id = r.uint<std::uint64_t>(f[1], "id");
        m.user_type = r.uint<std::uint8_t>(f[2], "user_type");
        m.payload = r.bin(f[3], "payload", max_user_payload_bytes);
      }
      if (r.failed()) return r.err();
      return message{std::move(m)};
    }
    case msg_type::digest: {
      reader r("digest");
      digest_msg m;
      if (const auto* f = r.fields(o, 4, "body")) {
        m.from = r.str(f[0], "from", max_name_bytes, false);
        m.from_addr = r.addr(f[1], "from_addr");
        m.hash = r.uint<std::uint64_t>(f[2], "hash");
        m.count = r.uint<std::uint32_t>(f[3], "count");
      }
      if (r.failed()) return r.err();
      return message{std::move(m)};
    }
    case msg_type::direct: {
      if (ch != channel::stream) {
        return make_error(errc::unknown_type, "direct message: only allowed on a stream");
      }
      MESH_TRY(auto v, read_direct(o));
      const auto* b = v.payload.data();
      return message{direct_msg{std::move(v.from), std::move(v.from_addr), v.user_type,
                                std::vector<std::byte>(b, b + v.payload.size())}};
    }
    case msg_type::compound:
      break;  // handled by the caller
  }
  return make_error(errc::unknown_type,
                    fmt::format("message type {} unknown", static_cast<int>(t)));
}

// msgpack-c's reference function: strings and binaries point into the input instead of being
// copied into the handle's zone (their size limits are the decoder's own field checks); ext
// objects are still copied, so the unpack limit of 0 ext bytes keeps refusing them.
bool reference_str_bin(msgpack::type::object_type t, std::size_t, void*) {
  return t == msgpack::type::STR || t == msgpack::type::BIN;
}

// Parses exactly one msgpack object filling [data, data+len), within limits derived from
// `max_bytes`. msgpack-c reports problems by throwing; they stop here.
result<msgpack::object_handle> unpack_one(const char* data, std::size_t len, std::size_t max_elems,
                                          std::string_view what) {
  try {
    std::size_t off = 0;
    // Every array/map/str/bin element needs at least one byte, so limits derived from the
    // input size stop "4 billion elements" headers before msgpack-c allocates for them.
    const msgpack::unpack_limit limit(max_elems, max_elems, len, len, 0, 8);
    // Strings and binaries reference `data` instead of being copied into the handle's zone:
    // every decoder copies what it keeps (or, decode_direct, hands out a view) before `data`
    // goes away.
    auto h = msgpack::unpack(data, len, off, reference_str_bin, nullptr, limit);
    if (off != len) {
      return make_error(errc::malformed,
                        fmt::format("{}: {} trailing bytes after the body", what, len - off));
    }
    return h;
  } catch (const msgpack::size_overflow& e) {
    return make_error(errc::too_large,
                      fmt::format("{}: body over a size limit ({})", what, e.what()));
  } catch (const std::exception& e) {
    return make_error(errc::malformed, fmt::format("{}: bad msgpack body ({})", what, e.what()));
  }
}

result<void> decode_into(std::span<const std::byte> bytes, channel ch, bool allow_compound,
                         std::vector<message>& out);

result<void> decode_compound(const msgpack::object& o, channel ch, std::vector<message>& out) {
  if (o.type != msgpack::type::ARRAY) {
    return make_error(errc::malformed, "compound message: body: expected array");
  }
  if (o.via.array.size == 0 || o.via.array.size > max_compound_parts) {
    return make_error(errc::malformed, fmt::format("compound message: {} parts, want 1..{}",
                                                   o.via.array.size, max_compound_parts));
  }
  for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
    const auto& part = o.via.array.ptr[i];
    if (part.type != msgpack::type::BIN) {
      return make_error(errc::malformed,
                        fmt::format("compound message: part {}: expected binary", i));
    }
    const auto* b = reinterpret_cast<const std::byte*>(part.via.bin.ptr);
    auto r = decode_into({b, part.via.bin.size}, ch, false, out);
    if (!r) return r.error().with_context(fmt::format("compound message: part {}", i));
  }
  return ok();
}

// Compound parts and push_pull members are the only large collections; anything else is
// small, so a tight element limit keeps hostile headers cheap.
std::size_t max_elements(msg_type t) {
  return t == msg_type::push_pull ? max_state_members * 8 : std::max<std::size_t>(64, max_tags * 2);
}

// The envelope of one message: its type, after the magic and version checks.
result<msg_type> read_envelope(std::span<const std::byte> bytes) {
  if (bytes.size() < 2) {
    return make_error(errc::malformed,
                      fmt::format("message: {} bytes, shorter than the envelope", bytes.size()));
  }
  const auto head = static_cast<std::uint8_t>(bytes[0]);
  if ((head & 0xF0) != envelope_magic) {
    return make_error(errc::malformed, fmt::format("message: bad magic byte 0x{:02x}", head));
  }
  const std::uint8_t version = head & 0x0F;
  if (version < protocol_version_min || version > protocol_version_max) {
    return make_error(errc::version_unsupported,
                      fmt::format("message: protocol version {} not in [{}, {}]", version,
                                  protocol_version_min, protocol_version_max));
  }
  const auto type_num = static_cast<std::uint8_t>(bytes[1]);
  if (type_num > static_cast<std::uint8_t>(msg_type::direct)) {
    return make_error(errc::unknown_type, fmt::format("message: unknown type {}", type_num));
  }
  return static_cast<msg_type>(type_num);
}

result<void> decode_into(std::span<const std::byte> bytes, channel ch, bool allow_compound,
                         std::vector<message>& out) {
  MESH_TRY(const auto t, read_envelope(bytes));
  const char* body = reinterpret_cast<const char*>(bytes.data()) + 2;
  const std::size_t body_len = bytes.size() - 2;
  MESH_TRY(auto handle, unpack_one(body, body_len, max_elements(t), "message"));
  if (t == msg_type::compound) {
    if (!allow_compound) {
      return make_error(errc::malformed, "compound message: nested compound");
    }
    return decode_compound(handle.get(), ch, out);
  }
  MESH_TRY(auto m, decode_body(t, handle.get(), ch));
  out.push_back(std::move(m));
  return ok();
}

bool fits(const std::string& s, std::size_t max) { return s.size() <= max; }

}  // namespace

msg_type type_of(const message& m) {
  return std::visit(
      [](const auto& v) -> msg_type {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, ping_msg>) return msg_type::ping;
        if constexpr (std::is_same_v<T, ping_req_msg>) return msg_type::ping_req;
        if constexpr (std::is_same_v<T, ack_msg>) return msg_type::ack;
        if constexpr (std::is_same_v<T, nack_msg>) return msg_type::nack;
        if constexpr (std::is_same_v<T, suspect_msg>) return msg_type::suspect;
        if constexpr (std::is_same_v<T, alive_msg>) return msg_type::alive;
        if constexpr (std::is_same_v<T, dead_msg>) return msg_type::dead;
        if constexpr (std::is_same_v<T, push_pull_msg>) return msg_type::push_pull;
        if constexpr (std::is_same_v<T, user_msg>) return msg_type::user;
        if constexpr (std::is_same_v<T, digest_msg>) return msg_type::digest;
        if constexpr (std::is_same_v<T, direct_msg>) return msg_type::direct;
      },
      m);
}

std::vector<std::byte> encode(const message& m) {
  // Packed straight into the returned vector, reserved up front: most messages are small; a
  // direct message carries its payload (a swarm piece: 256 KiB), which is copied once.
  std::vector<std::byte> out;
  const auto* direct = std::get_if<direct_msg>(&m);
  out.reserve(direct != nullptr ? direct->payload.size() + 512 : 256);
  byte_sink buf{out};
  put_envelope(buf, type_of(m));
  packer p(buf);
  std::visit([&](const auto& v) { put_body(p, v); }, m);
  return out;
}

std::vector<std::byte> encode_compound(const std::vector<std::vector<std::byte>>& parts) {
  std::vector<std::span<const std::byte>> spans(parts.begin(), parts.end());
  return encode_compound(std::span<const std::span<const std::byte>>(spans));
}

std::vector<std::byte> encode_compound(std::span<const std::span<const std::byte>> parts) {
  std::vector<std::byte> out;
  out.reserve(max_packet_bytes + 64);  // a compound packet is at most this
  byte_sink buf{out};
  put_envelope(buf, msg_type::compound);
  packer p(buf);
  p.pack_array(static_cast<std::uint32_t>(parts.size()));
  for (const auto& part : parts) {
    p.pack_bin(static_cast<std::uint32_t>(part.size()));
    p.pack_bin_body(reinterpret_cast<const char*>(part.data()),
                    static_cast<std::uint32_t>(part.size()));
  }
  return out;
}

result<void> check_size(std::span<const std::byte> bytes, channel ch) {
  const std::size_t limit = ch == channel::packet ? max_packet_bytes : max_stream_bytes;
  if (bytes.size() > limit) {
    return make_error(errc::too_large, fmt::format("{}: {} bytes, limit {}",
                                                   ch == channel::packet ? "packet" : "stream",
                                                   bytes.size(), limit));
  }
  return ok();
}

result<std::vector<message>> decode(std::span<const std::byte> bytes, channel ch) {
  MESH_CHECK(check_size(bytes, ch));
  std::vector<message> out;
  MESH_CHECK(decode_into(bytes, ch, ch == channel::packet, out));
  return out;
}

result<std::optional<direct_view>> decode_direct(std::span<const std::byte> bytes) {
  MESH_CHECK(check_size(bytes, channel::stream));
  MESH_TRY(const auto t, read_envelope(bytes));
  if (t != msg_type::direct) return std::nullopt;
  MESH_TRY(auto handle, unpack_one(reinterpret_cast<const char*>(bytes.data()) + 2,
                                   bytes.size() - 2, max_elements(t), "message"));
  MESH_TRY(auto v, read_direct(handle.get()));
  return std::optional<direct_view>(std::move(v));
}

void prepend_direct(frame_buffer& payload, const std::string& from, const address& from_addr,
                    std::uint8_t user_type) {
  std::vector<std::byte> head;
  head.reserve(512);
  byte_sink buf{head};
  put_envelope(buf, msg_type::direct);
  packer p(buf);
  put_direct_head(p, from, from_addr, user_type, payload.size());
  payload.prepend(head);
}

result<void> validate_meta(const node_meta& meta) {
  if (meta.name.empty() || !fits(meta.name, max_name_bytes)) {
    return make_error(errc::too_large, fmt::format("node name '{}': must be 1..{} bytes",
                                                   meta.name.substr(0, 32), max_name_bytes));
  }
  if (!fits(meta.addr.host, max_host_bytes)) {
    return make_error(errc::too_large,
                      fmt::format("node {}: host longer than {} bytes", meta.name, max_host_bytes));
  }
  if (meta.tags.size() > max_tags) {
    return make_error(errc::too_large, fmt::format("node {}: {} tags, limit {}", meta.name,
                                                   meta.tags.size(), max_tags));
  }
  for (const auto& [k, v] : meta.tags) {
    if (k.empty() || !fits(k, max_tag_key_bytes) || !fits(v, max_tag_value_bytes)) {
      return make_error(
          errc::too_large,
          fmt::format("node {}: tag '{}': key must be 1..{} bytes, value <= {}", meta.name,
                      k.substr(0, 32), max_tag_key_bytes, max_tag_value_bytes));
    }
  }
  if (meta.protocol_min > meta.protocol_max) {
    return make_error(errc::malformed,
                      fmt::format("node {}: protocol_min > protocol_max", meta.name));
  }
  // The alive message must fit a packet even inside a compound.
  const auto size = encode(alive_msg{incarnation(~0ull), meta}).size();
  if (size + compound_header_bytes + compound_part_overhead > max_packet_bytes) {
    return make_error(errc::too_large, fmt::format("node {}: metadata encodes to {} bytes, "
                                                   "over the {}-byte packet limit",
                                                   meta.name, size, max_packet_bytes));
  }
  return ok();
}

}  // namespace meshdeploy::gossip

#include "node/deploy/log_messages.h"

#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <msgpack.hpp>

#include <cstring>
#include <exception>

namespace meshdeploy::deploy {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

void pack_header(packer& p, log_msg_type t, std::uint32_t body_fields) {
  p.pack_array(2 + body_fields);
  p.pack(log_protocol_version);
  p.pack(static_cast<std::uint8_t>(t));
}

struct encoder {
  packer& p;
  void operator()(const log_request& m) {
    pack_header(p, log_msg_type::request, 4);
    p.pack(m.request_id);
    p.pack(m.deployment_id);
    p.pack(m.event);
    p.pack(m.max_bytes);
  }
  void operator()(const log_response& m) {
    pack_header(p, log_msg_type::response, 6);
    p.pack(m.request_id);
    p.pack(static_cast<std::uint8_t>(m.status));
    p.pack(m.message);
    p.pack_bin(static_cast<std::uint32_t>(m.text.size()));
    p.pack_bin_body(m.text.data(), static_cast<std::uint32_t>(m.text.size()));
    p.pack(m.truncated);
    p.pack(m.full_bytes);
  }
};

error bad(std::string what) {
  return make_error(errc::invalid_argument, "log message: " + std::move(what));
}

result<std::uint64_t> as_uint(const msgpack::object& o, const char* field, std::uint64_t max) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) {
    return bad(fmt::format("field {} is not an unsigned integer", field));
  }
  if (o.via.u64 > max) return bad(fmt::format("field {} is {}, limit {}", field, o.via.u64, max));
  return o.via.u64;
}

result<std::string> as_str(const msgpack::object& o, const char* field, std::size_t limit) {
  if (o.type != msgpack::type::STR) return bad(fmt::format("field {} is not a string", field));
  if (o.via.str.size > limit) {
    return bad(fmt::format("field {} is {} bytes, limit {}", field, o.via.str.size, limit));
  }
  return std::string(o.via.str.ptr, o.via.str.size);
}

result<log_message> decode_request(std::span<const msgpack::object> f) {
  if (f.size() != 4) return bad(fmt::format("request: {} body fields, expected 4", f.size()));
  log_request m;
  MESH_TRY(m.request_id, as_uint(f[0], "request_id", UINT64_MAX));
  MESH_TRY(m.deployment_id, as_str(f[1], "deployment_id", max_log_id_bytes));
  if (m.deployment_id.empty()) return bad("field deployment_id is empty");
  MESH_TRY(m.event, as_str(f[2], "event", max_log_event_bytes));
  MESH_TRY(auto max_bytes, as_uint(f[3], "max_bytes", max_log_text_bytes));
  if (max_bytes == 0) return bad("field max_bytes is 0");
  m.max_bytes = static_cast<std::uint32_t>(max_bytes);
  return m;
}

result<log_message> decode_response(std::span<const msgpack::object> f) {
  if (f.size() != 6) return bad(fmt::format("response: {} body fields, expected 6", f.size()));
  log_response m;
  MESH_TRY(m.request_id, as_uint(f[0], "request_id", UINT64_MAX));
  MESH_TRY(auto status, as_uint(f[1], "status", UINT8_MAX));
  m.status = static_cast<log_status>(status);
  MESH_TRY(m.message, as_str(f[2], "message", max_log_message_bytes));
  if (f[3].type != msgpack::type::BIN) return bad("field text is not bin");
  if (f[3].via.bin.size > max_log_text_bytes) {
    return bad(
        fmt::format("field text is {} bytes, limit {}", f[3].via.bin.size, max_log_text_bytes));
  }
  m.text.assign(f[3].via.bin.ptr, f[3].via.bin.size);
  if (f[4].type != msgpack::type::BOOLEAN) return bad("field truncated is not bool");
  m.truncated = f[4].via.boolean;
  MESH_TRY(m.full_bytes, as_uint(f[5], "full_bytes", UINT64_MAX));
  return m;
}

}  // namespace

std::vector<std::byte> encode_log_message(const log_message& m) {
  msgpack::sbuffer buf;
  packer p(buf);
  std::visit(encoder{p}, m);
  std::vector<std::byte> out(buf.size());
  std::memcpy(out.data(), buf.data(), buf.size());
  return out;
}

result<log_message> decode_log_message(std::span<const std::byte> bytes) {
  if (bytes.size() > max_log_wire_bytes) {
    return bad(fmt::format("{} bytes, limit {}", bytes.size(), max_log_wire_bytes));
  }
  msgpack::object_handle oh;
  try {
    std::size_t off = 0;
    // One flat array of at most 8 fields: depth 1 below the top, no maps, no extensions.
    const msgpack::unpack_limit limit(8, 0, max_log_text_bytes, max_log_text_bytes, 0, 2);
    oh = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), off, nullptr,
                         nullptr, limit);
    if (off != bytes.size()) return bad("trailing bytes after the message");
  } catch (const std::exception& e) {
    return bad(fmt::format("not msgpack within the limits ({})", e.what()));
  }
  const msgpack::object& o = oh.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 2) {
    return bad("not an array of at least 2 fields");
  }
  const auto f = std::span<const msgpack::object>(o.via.array.ptr, o.via.array.size);
  MESH_TRY(auto version, as_uint(f[0], "version", UINT8_MAX));
  if (version < log_protocol_min || version > log_protocol_max) {
    return bad(fmt::format("protocol version {} (this build reads {}-{})", version,
                           log_protocol_min, log_protocol_max));
  }
  MESH_TRY(auto type, as_uint(f[1], "type", UINT8_MAX));
  const auto body = f.subspan(2);
  switch (type) {
    case static_cast<std::uint8_t>(log_msg_type::request):
      return decode_request(body);
    case static_cast<std::uint8_t>(log_msg_type::response):
      return decode_response(body);
    default:
      return bad(fmt::format("unknown message type {}", type));
  }
}

}  // namespace meshdeploy::deploy

#include "node/records/sync_messages.h"

#include "node/records/errc.h"

#include <fmt/format.h>
#include <msgpack.hpp>

#include <cstring>
#include <exception>
#include <limits>

namespace meshdeploy::records {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

void pack_bin(packer& p, const void* data, std::size_t n) {
  p.pack_bin(static_cast<std::uint32_t>(n));
  p.pack_bin_body(static_cast<const char*>(data), static_cast<std::uint32_t>(n));
}

void pack_header(packer& p, sync_msg_type t, std::uint32_t body_fields) {
  p.pack_array(2 + body_fields);
  p.pack(sync_protocol_version);
  p.pack(static_cast<std::uint8_t>(t));
}

struct encoder {
  packer& p;
  void operator()(const push_msg& m) {
    pack_header(p, sync_msg_type::push, 3);
    p.pack(m.sync);
    p.pack_array(static_cast<std::uint32_t>(m.records.size()));
    for (const auto& r : m.records) pack_bin(p, r.data(), r.size());
    p.pack_array(static_cast<std::uint32_t>(m.tombstones.size()));
    for (const auto& t : m.tombstones) {
      p.pack_array(2);
      pack_bin(p, t.id.data(), t.id.size());
      p.pack(t.version);
    }
  }
  void operator()(const digest_msg& m) {
    pack_header(p, sync_msg_type::digest, 2);
    p.pack(m.root);
    p.pack(m.count);
  }
  void operator()(const buckets_msg& m) {
    pack_header(p, sync_msg_type::buckets, 2);
    p.pack(m.root);
    p.pack_array(static_cast<std::uint32_t>(m.digests.size()));
    for (std::uint64_t d : m.digests) p.pack(d);
  }
  void operator()(const entries_msg& m) {
    pack_header(p, sync_msg_type::entries, 2);
    p.pack_array(static_cast<std::uint32_t>(m.buckets.size()));
    for (std::uint16_t b : m.buckets) p.pack(b);
    p.pack_array(static_cast<std::uint32_t>(m.entries.size()));
    for (const auto& e : m.entries) {
      p.pack_array(3);
      pack_bin(p, e.id.data(), e.id.size());
      p.pack(e.version);
      p.pack(e.digest);
    }
  }
  void operator()(const want_msg& m) {
    pack_header(p, sync_msg_type::want, 1);
    p.pack_array(static_cast<std::uint32_t>(m.ids.size()));
    for (const auto& id : m.ids) pack_bin(p, id.data(), id.size());
  }
};

error bad(errc e, std::string what) { return make_error(e, "sync message: " + std::move(what)); }

result<std::uint64_t> as_u64(const msgpack::object& o, const char* field) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) {
    return bad(errc::malformed, fmt::format("field {} is not an unsigned integer", field));
  }
  return o.via.u64;
}

result<std::span<const msgpack::object>> as_array(const msgpack::object& o, const char* field,
                                                  std::size_t limit) {
  if (o.type != msgpack::type::ARRAY) {
    return bad(errc::malformed, fmt::format("field {} is not an array", field));
  }
  if (o.via.array.size > limit) {
    return bad(errc::too_large,
               fmt::format("field {} has {} items, limit {}", field, o.via.array.size, limit));
  }
  return std::span<const msgpack::object>(o.via.array.ptr, o.via.array.size);
}

result<std::string> as_bin(const msgpack::object& o, const char* field, std::size_t limit) {
  if (o.type != msgpack::type::BIN) {
    return bad(errc::malformed, fmt::format("field {} is not bin", field));
  }
  if (o.via.bin.size > limit) {
    return bad(errc::too_large,
               fmt::format("field {} is {} bytes, limit {}", field, o.via.bin.size, limit));
  }
  return std::string(o.via.bin.ptr, o.via.bin.size);
}

result<sync_message> decode_push(std::span<const msgpack::object> f) {
  if (f.size() != 3) return bad(errc::malformed, "push: expected 3 body fields");
  push_msg m;
  if (f[0].type != msgpack::type::BOOLEAN) return bad(errc::malformed, "field sync is not bool");
  m.sync = f[0].via.boolean;
  MESH_TRY(auto recs, as_array(f[1], "records", max_sync_items));
  m.records.reserve(recs.size());
  for (const auto& r : recs) {
    if (r.type != msgpack::type::BIN) return bad(errc::malformed, "field records[] is not bin");
    if (r.via.bin.size > max_record_bytes) {
      return bad(errc::too_large,
                 fmt::format("a record is {} bytes, limit {}", r.via.bin.size, max_record_bytes));
    }
    const auto* b = reinterpret_cast<const std::byte*>(r.via.bin.ptr);
    m.records.emplace_back(b, b + r.via.bin.size);
  }
  MESH_TRY(auto tombs, as_array(f[2], "tombstones", max_sync_items));
  m.tombstones.reserve(tombs.size());
  for (const auto& t : tombs) {
    MESH_TRY(auto pair, as_array(t, "tombstones[]", 2));
    if (pair.size() != 2) return bad(errc::malformed, "field tombstones[] is not a pair");
    tombstone_note n;
    MESH_TRY(n.id, as_bin(pair[0], "tombstones[].id", max_sync_id_bytes));
    MESH_TRY(n.version, as_u64(pair[1], "tombstones[].version"));
    m.tombstones.push_back(std::move(n));
  }
  return m;
}

result<sync_message> decode_digest(std::span<const msgpack::object> f) {
  if (f.size() != 2) return bad(errc::malformed, "digest: expected 2 body fields");
  digest_msg m;
  MESH_TRY(m.root, as_u64(f[0], "root"));
  MESH_TRY(m.count, as_u64(f[1], "count"));
  return m;
}

result<sync_message> decode_buckets(std::span<const msgpack::object> f) {
  if (f.size() != 2) return bad(errc::malformed, "buckets: expected 2 body fields");
  buckets_msg m;
  MESH_TRY(m.root, as_u64(f[0], "root"));
  MESH_TRY(auto ds, as_array(f[1], "digests", sync_bucket_count));
  if (ds.size() != sync_bucket_count) {
    return bad(errc::malformed, fmt::format("field digests has {} items, expected {}", ds.size(),
                                            sync_bucket_count));
  }
  m.digests.reserve(ds.size());
  for (const auto& d : ds) {
    MESH_TRY(auto v, as_u64(d, "digests[]"));
    m.digests.push_back(v);
  }
  return m;
}

result<sync_message> decode_entries(std::span<const msgpack::object> f) {
  if (f.size() != 2) return bad(errc::malformed, "entries: expected 2 body fields");
  entries_msg m;
  MESH_TRY(auto bs, as_array(f[0], "buckets", sync_bucket_count));
  for (const auto& b : bs) {
    MESH_TRY(auto v, as_u64(b, "buckets[]"));
    if (v >= sync_bucket_count) {
      return bad(errc::malformed,
                 fmt::format("field buckets[] is {}, limit {}", v, sync_bucket_count - 1));
    }
    m.buckets.push_back(static_cast<std::uint16_t>(v));
  }
  MESH_TRY(auto es, as_array(f[1], "entries", max_sync_items));
  m.entries.reserve(es.size());
  for (const auto& e : es) {
    MESH_TRY(auto triple, as_array(e, "entries[]", 3));
    if (triple.size() != 3) return bad(errc::malformed, "field entries[] is not a triple");
    entry_summary s;
    MESH_TRY(s.id, as_bin(triple[0], "entries[].id", max_sync_id_bytes));
    MESH_TRY(s.version, as_u64(triple[1], "entries[].version"));
    MESH_TRY(s.digest, as_u64(triple[2], "entries[].digest"));
    m.entries.push_back(std::move(s));
  }
  return m;
}

result<sync_message> decode_want(std::span<const msgpack::object> f) {
  if (f.size() != 1) return bad(errc::malformed, "want: expected 1 body field");
  want_msg m;
  MESH_TRY(auto ids, as_array(f[0], "ids", max_sync_items));
  m.ids.reserve(ids.size());
  for (const auto& id : ids) {
    MESH_TRY(auto s, as_bin(id, "ids[]", max_sync_id_bytes));
    m.ids.push_back(std::move(s));
  }
  return m;
}

}  // namespace

std::vector<std::byte> encode_sync_message(const sync_message& m) {
  msgpack::sbuffer buf;
  packer p(buf);
  std::visit(encoder{p}, m);
  std::vector<std::byte> out(buf.size());
  std::memcpy(out.data(), buf.data(), buf.size());
  return out;
}

result<sync_message> decode_sync_message(std::span<const std::byte> bytes) {
  if (bytes.size() > max_sync_message_bytes) {
    return bad(errc::too_large,
               fmt::format("{} bytes, limit {}", bytes.size(), max_sync_message_bytes));
  }
  msgpack::object_handle oh;
  try {
    std::size_t off = 0;
    // Depth 4 is enough for every message ([.., [[id, v, d]]]); the item limits keep a hostile
    // input from making the parser allocate much more than the input size.
    msgpack::unpack_limit limit(max_sync_items, 0, max_sync_message_bytes, max_sync_message_bytes,
                                0, 4);
    oh = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), off, nullptr,
                         nullptr, limit);
    if (off != bytes.size()) return bad(errc::malformed, "trailing bytes after the message");
  } catch (const std::exception& e) {
    return bad(errc::malformed, fmt::format("not msgpack ({})", e.what()));
  }
  const msgpack::object& o = oh.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 2) {
    return bad(errc::malformed, "not an array of at least 2 fields");
  }
  const auto f = std::span<const msgpack::object>(o.via.array.ptr, o.via.array.size);
  MESH_TRY(auto version, as_u64(f[0], "version"));
  if (version < sync_protocol_min || version > sync_protocol_max) {
    return bad(errc::version_unsupported,
               fmt::format("protocol version {} (this build reads {}-{})", version,
                           sync_protocol_min, sync_protocol_max));
  }
  MESH_TRY(auto type, as_u64(f[1], "type"));
  const auto body = f.subspan(2);
  switch (type) {
    case static_cast<std::uint8_t>(sync_msg_type::push):
      return decode_push(body);
    case static_cast<std::uint8_t>(sync_msg_type::digest):
      return decode_digest(body);
    case static_cast<std::uint8_t>(sync_msg_type::buckets):
      return decode_buckets(body);
    case static_cast<std::uint8_t>(sync_msg_type::entries):
      return decode_entries(body);
    case static_cast<std::uint8_t>(sync_msg_type::want):
      return decode_want(body);
    default:
      return bad(errc::malformed, fmt::format("unknown message type {}", type));
  }
}

std::size_t encoded_size_bound(const entry_summary& e) { return 1 + 5 + e.id.size() + 9 + 9; }
std::size_t encoded_size_bound_record(std::size_t record_bytes) { return 5 + record_bytes; }
std::size_t encoded_size_bound(const tombstone_note& t) { return 1 + 5 + t.id.size() + 9; }

}  // namespace meshdeploy::records

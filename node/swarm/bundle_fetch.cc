#include "node/swarm/bundle_fetch.h"

#include "node/agent/revision.h"
#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <msgpack.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace meshdeploy::swarm {

namespace fs = std::filesystem;

namespace {

constexpr std::uint8_t wire_version = 1;
constexpr std::uint8_t type_want = 1, type_piece = 2, type_none = 3;
constexpr std::size_t max_app_bytes = 128;
constexpr std::size_t id_bytes = 64;

using packer = msgpack::packer<msgpack::sbuffer>;

std::vector<std::byte> to_bytes(const msgpack::sbuffer& b) {
  std::vector<std::byte> out(b.size());
  std::memcpy(out.data(), b.data(), b.size());
  return out;
}

void head(packer& p, std::uint32_t n, std::uint8_t type, const std::string& app,
          const std::string& id) {
  p.pack_array(n);
  p.pack(wire_version);
  p.pack(type);
  p.pack(app);
  p.pack(id);
}

// A decoded message; nullopt for anything malformed or over the limits.
struct message {
  std::uint8_t type = 0;
  std::string app, id;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  std::span<const std::byte> data;
  msgpack::object_handle keep;  // owns `data`
};

std::optional<std::string> str(const msgpack::object& o, std::size_t limit) {
  if (o.type != msgpack::type::STR || o.via.str.size > limit) return std::nullopt;
  return std::string(o.via.str.ptr, o.via.str.size);
}

std::optional<std::uint64_t> uint(const msgpack::object& o) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return std::nullopt;
  return o.via.u64;
}

std::optional<message> decode(std::span<const std::byte> bytes) {
  if (bytes.size() > piece_bytes + 4096) return std::nullopt;
  message m;
  try {
    std::size_t off = 0;
    const msgpack::unpack_limit limit(8, 0, 256, piece_bytes, 0, 2);
    m.keep = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), off,
                             nullptr, nullptr, limit);
    if (off != bytes.size()) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const msgpack::object& o = m.keep.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 4) return std::nullopt;
  const msgpack::object* f = o.via.array.ptr;
  auto version = uint(f[0]);
  auto type = uint(f[1]);
  auto app = str(f[2], max_app_bytes);
  auto id = str(f[3], id_bytes);
  if (!version || *version != wire_version || !type || !app || !id) return std::nullopt;
  m.type = static_cast<std::uint8_t>(*type);
  m.app = std::move(*app);
  m.id = std::move(*id);
  const std::uint32_t n = o.via.array.size;
  if (m.type == type_want && n == 6) {
    auto offset = uint(f[4]);
    auto length = uint(f[5]);
    if (!offset || !length || *length == 0 || *length > piece_bytes) return std::nullopt;
    m.offset = *offset;
    m.length = static_cast<std::uint32_t>(*length);
    return m;
  }
  if (m.type == type_piece && n == 6) {
    auto offset = uint(f[4]);
    if (!offset || f[5].type != msgpack::type::BIN || f[5].via.bin.size == 0 ||
        f[5].via.bin.size > piece_bytes) {
      return std::nullopt;
    }
    m.offset = *offset;
    m.data = std::span(reinterpret_cast<const std::byte*>(f[5].via.bin.ptr), f[5].via.bin.size);
    return m;
  }
  if (m.type == type_none && n == 4) return m;
  return std::nullopt;
}

}  // namespace

std::vector<std::byte> encode_want(const std::string& app, const std::string& id,
                                   std::uint64_t offset, std::uint32_t length) {
  msgpack::sbuffer b;
  packer p(b);
  head(p, 6, type_want, app, id);
  p.pack(offset);
  p.pack(length);
  return to_bytes(b);
}

std::vector<std::byte> encode_piece(const std::string& app, const std::string& id,
                                    std::uint64_t offset, std::span<const std::byte> data) {
  msgpack::sbuffer b;
  packer p(b);
  head(p, 6, type_piece, app, id);
  p.pack(offset);
  p.pack_bin(static_cast<std::uint32_t>(data.size()));
  p.pack_bin_body(reinterpret_cast<const char*>(data.data()),
                  static_cast<std::uint32_t>(data.size()));
  return to_bytes(b);
}

std::vector<std::byte> encode_none(const std::string& app, const std::string& id) {
  msgpack::sbuffer b;
  packer p(b);
  head(p, 4, type_none, app, id);
  return to_bytes(b);
}

bundle_fetch::bundle_fetch(fetch_env env, fs::path work_dir)
    : env_(std::move(env)), work_dir_(std::move(work_dir)) {
  std::error_code ec;
  fs::create_directories(work_dir_, ec);
}

void bundle_fetch::fetch(const bundle_ref& b, std::vector<std::string> sources, done_fn done,
                         time_point now) {
  if (auto it = downloads_.find(b.id); it != downloads_.end()) {
    it->second.done.push_back(std::move(done));
    return;
  }
  if (sources.empty()) {
    done(make_error(deploy::errc::not_found,
                    fmt::format("bundle {} of '{}': no node to fetch it from", b.id, b.app)));
    return;
  }
  download d;
  d.ref = b;
  d.sources = std::move(sources);
  d.part = work_dir_ / (b.id + ".part");
  d.last_progress = now;
  d.done.push_back(std::move(done));
  std::error_code ec;
  fs::remove(d.part, ec);
  auto [it, _] = downloads_.emplace(b.id, std::move(d));
  if (b.size == 0) {
    finish(b.id, make_error(deploy::errc::invalid_argument,
                            fmt::format("bundle {} of '{}' has size 0", b.id, b.app)));
    return;
  }
  ask(it->second, now);
}

void bundle_fetch::ask(download& d, time_point now) {
  const std::string& peer = d.sources[d.source];
  while (d.in_flight.size() < pieces_in_flight && d.next_offset < d.ref.size) {
    if (d.have.count(d.next_offset) != 0) {
      d.next_offset += piece_bytes;
      continue;
    }
    const auto len = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(piece_bytes, d.ref.size - d.next_offset));
    d.in_flight.emplace(d.next_offset, len);
    env_.send(peer, encode_want(d.ref.app, d.ref.id, d.next_offset, len));
    d.next_offset += len;
  }
  (void)now;
}

void bundle_fetch::next_source(download& d, const std::string& why, time_point now) {
  spdlog::info("bundle {}: source {} {}", d.ref.id.substr(0, 12), d.sources[d.source], why);
  if (d.source + 1 >= d.sources.size()) {
    std::string tried;
    for (const auto& s : d.sources) tried += (tried.empty() ? "" : ", ") + s;
    finish(d.ref.id,
           make_error(deploy::errc::not_found,
                      fmt::format("bundle {} of '{}': no source delivered it (tried {}; last: {})",
                                  d.ref.id, d.ref.app, tried, why)));
    return;
  }
  ++d.source;
  // Ask the next source for every piece not yet received.
  d.next_offset = 0;
  d.in_flight.clear();
  d.last_progress = now;
  ask(d, now);
}

void bundle_fetch::finish(const std::string& id, result<fs::path> r) {
  auto it = downloads_.find(id);
  if (it == downloads_.end()) return;
  auto done = std::move(it->second.done);
  if (!r) {
    std::error_code ec;
    fs::remove(it->second.part, ec);
  }
  downloads_.erase(it);
  for (auto& fn : done) fn(r);
}

void bundle_fetch::serve(const std::string& from, const std::string& app, const std::string& id,
                         std::uint64_t offset, std::uint32_t length) {
  bundle_ref ref{app, id, {}, 0};
  auto path = env_.locate(ref);
  const int fd = path ? ::open(path->c_str(), O_RDONLY | O_CLOEXEC) : -1;
  if (fd < 0) {
    env_.send(from, encode_none(app, id));
    return;
  }
  std::vector<std::byte> buf(length);
  const ssize_t n = ::pread(fd, buf.data(), length, static_cast<off_t>(offset));
  ::close(fd);
  if (n <= 0) {
    env_.send(from, encode_none(app, id));
    return;
  }
  buf.resize(static_cast<std::size_t>(n));
  ++stats_.pieces_served;
  stats_.bytes_served += buf.size();
  env_.send(from, encode_piece(app, id, offset, buf));
}

void bundle_fetch::on_message(const std::string& from, std::span<const std::byte> bytes,
                              time_point now) {
  auto m = decode(bytes);
  if (!m) {
    ++stats_.rejected_messages;
    return;
  }
  if (m->type == type_want) {
    serve(from, m->app, m->id, m->offset, m->length);
    return;
  }
  auto it = downloads_.find(m->id);
  if (it == downloads_.end() || it->second.sources[it->second.source] != from) {
    ++stats_.rejected_messages;  // late, or from a source we gave up on
    return;
  }
  download& d = it->second;
  if (m->type == type_none) {
    next_source(d, "does not hold it", now);
    return;
  }
  auto asked = d.in_flight.find(m->offset);
  if (asked == d.in_flight.end() || asked->second != m->data.size()) {
    ++stats_.rejected_messages;
    next_source(d, "sent bytes that were not asked for", now);
    return;
  }
  const int fd = ::open(d.part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  const bool written =
      fd >= 0 && ::pwrite(fd, m->data.data(), m->data.size(), static_cast<off_t>(m->offset)) ==
                     static_cast<ssize_t>(m->data.size());
  if (fd >= 0) ::close(fd);
  if (!written) {
    finish(d.ref.id,
           make_error(deploy::errc::internal, fmt::format("cannot write {}", d.part.string())));
    return;
  }
  d.in_flight.erase(asked);
  d.have.insert(m->offset);
  d.received += m->data.size();
  d.last_progress = now;
  ++stats_.pieces_received;
  stats_.bytes_received += m->data.size();
  if (d.received < d.ref.size) {
    ask(d, now);
    return;
  }
  auto hash = agent::hash_file(d.part);
  if (!hash || hash.value() != d.ref.id) {
    ++stats_.bad_bundles;
    std::error_code ec;
    fs::remove(d.part, ec);
    d.received = 0;
    d.have.clear();
    next_source(d, "delivered bytes that do not hash to the revision id", now);
    return;
  }
  finish(d.ref.id, d.part);
}

void bundle_fetch::on_tick(time_point now) {
  std::vector<std::string> stalled;
  for (auto& [id, d] : downloads_) {
    if (now - d.last_progress >= source_timeout) stalled.push_back(id);
  }
  for (const auto& id : stalled) {
    auto it = downloads_.find(id);
    if (it != downloads_.end()) next_source(it->second, "made no progress for 10 s", now);
  }
}

time_point bundle_fetch::next_deadline() const {
  time_point next = time_point::max();
  for (const auto& [id, d] : downloads_) next = std::min(next, d.last_progress + source_timeout);
  return next;
}

}  // namespace meshdeploy::swarm

#include "node/swarm/manifest.h"

#include "node/agent/errc.h"
#include "node/agent/unique_fd.h"

#include <fmt/format.h>
#include <msgpack.hpp>
#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace meshdeploy::swarm {

namespace fs = std::filesystem;
using agent::errc;

namespace {

constexpr std::uint8_t manifest_version = 1;
constexpr std::size_t hash_bytes = std::tuple_size_v<piece_hash>;
// The largest valid encoding: a 4-element array header, the version, a u64, a u32 and a bin32
// header (5 bytes) plus every hash. Anything longer is refused before it is parsed.
constexpr std::size_t max_encoded_bytes = 1 + 1 + 9 + 5 + 5 + max_pieces * hash_bytes;

using packer = msgpack::packer<msgpack::sbuffer>;

error bad(std::string what) {
  return make_error(errc::invalid_argument, "piece manifest: " + std::move(what));
}

error io_failure(std::string_view what, const fs::path& path, int e) {
  return make_error(errc::io_error,
                    fmt::format("{} {}: {}", what, path.string(), agent::errno_text(e)));
}

// ceil(size / piece_size) without the overflow of (size + piece_size - 1).
std::uint64_t pieces_for(std::uint64_t size, std::uint32_t piece_size) {
  return size / piece_size + (size % piece_size != 0 ? 1 : 0);
}

result<std::uint64_t> as_uint(const msgpack::object& o, const char* field) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) {
    return bad(fmt::format("field {} is not an unsigned integer", field));
  }
  return o.via.u64;
}

// Reads up to `size` bytes, retrying on EINTR and short reads. Returns the number read (less
// than `size` only at end of file), or -1 with errno set.
ssize_t read_full(int fd, std::byte* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t r = ::read(fd, data + done, size - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

}  // namespace

std::uint64_t manifest::piece_offset(std::size_t i) const {
  return static_cast<std::uint64_t>(i) * piece_size;
}

std::uint32_t manifest::piece_length(std::size_t i) const {
  // From `size`, not from `pieces`, so an index past the end yields 0 rather than garbage.
  if (piece_size == 0 || i >= pieces_for(size, piece_size)) return 0;
  const std::uint64_t offset = piece_offset(i);
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(piece_size, size - offset));
}

piece_hash hash_piece(std::span<const std::byte> data) {
  // sodium_init() is idempotent and thread-safe; without it libsodium still hashes correctly
  // (with its portable implementation), so its result is not needed here.
  [[maybe_unused]] static const int init = sodium_init();
  piece_hash out{};
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                     reinterpret_cast<const unsigned char*>(data.data()), data.size(), nullptr, 0);
  return out;
}

std::vector<std::byte> encode_manifest(const manifest& m) {
  msgpack::sbuffer buf;
  packer p(buf);
  p.pack_array(4);
  p.pack(manifest_version);
  p.pack(m.size);
  p.pack(m.piece_size);
  const auto hash_total = static_cast<std::uint32_t>(m.pieces.size() * hash_bytes);
  p.pack_bin(hash_total);
  for (const auto& h : m.pieces) {
    p.pack_bin_body(reinterpret_cast<const char*>(h.data()), static_cast<std::uint32_t>(h.size()));
  }
  std::vector<std::byte> out(buf.size());
  std::memcpy(out.data(), buf.data(), buf.size());
  return out;
}

result<manifest> decode_manifest(std::span<const std::byte> bytes) {
  if (bytes.size() > max_encoded_bytes) {
    return bad(fmt::format("{} bytes, limit {}", bytes.size(), max_encoded_bytes));
  }
  msgpack::object_handle oh;
  try {
    std::size_t off = 0;
    // One flat array of 4 fields: no strings, maps or extensions, one bin of the hashes.
    const msgpack::unpack_limit limit(4, 0, 0, max_pieces * hash_bytes, 0, 1);
    oh = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), off, nullptr,
                         nullptr, limit);
    if (off != bytes.size()) return bad("trailing bytes after the manifest");
  } catch (const std::exception& e) {
    return bad(fmt::format("not msgpack within the limits ({})", e.what()));
  }
  const msgpack::object& o = oh.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 4) {
    return bad("not an array of 4 fields");
  }
  const auto f = std::span<const msgpack::object>(o.via.array.ptr, o.via.array.size);
  MESH_TRY(const auto version, as_uint(f[0], "version"));
  if (version != manifest_version) {
    return bad(fmt::format("version {} (this build reads {})", version, manifest_version));
  }
  manifest m;
  MESH_TRY(m.size, as_uint(f[1], "size"));
  MESH_TRY(const auto piece_size, as_uint(f[2], "piece_size"));
  if (piece_size < min_piece_size || piece_size > max_piece_size) {
    return bad(
        fmt::format("piece size {} outside [{}, {}]", piece_size, min_piece_size, max_piece_size));
  }
  m.piece_size = static_cast<std::uint32_t>(piece_size);
  const std::uint64_t count = pieces_for(m.size, m.piece_size);
  if (count > max_pieces) {
    return bad(fmt::format("{} bytes in pieces of {} is {} pieces, limit {}", m.size, m.piece_size,
                           count, max_pieces));
  }
  if (f[3].type != msgpack::type::BIN) return bad("field hashes is not bin");
  if (f[3].via.bin.size != count * hash_bytes) {
    return bad(fmt::format("{} hash bytes, expected {} ({} pieces of {} bytes)", f[3].via.bin.size,
                           count * hash_bytes, count, m.piece_size));
  }
  m.pieces.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::memcpy(m.pieces[i].data(), f[3].via.bin.ptr + i * hash_bytes, hash_bytes);
  }
  return m;
}

std::string manifest_id(std::span<const std::byte> encoded) {
  const piece_hash h = hash_piece(encoded);
  char hex[2 * hash_bytes + 1];
  sodium_bin2hex(hex, sizeof hex, reinterpret_cast<const unsigned char*>(h.data()), h.size());
  return std::string(hex, 2 * hash_bytes);
}

result<manifest> manifest_of_file(const fs::path& file, std::uint32_t piece_size) {
  if (piece_size < min_piece_size || piece_size > max_piece_size) {
    return make_error(errc::invalid_argument,
                      fmt::format("cannot cut {} into pieces of {} bytes: outside [{}, {}]",
                                  file.string(), piece_size, min_piece_size, max_piece_size));
  }
  agent::unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return io_failure("cannot open", file, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_failure("cannot stat", file, errno);
  if (!S_ISREG(st.st_mode)) {
    return make_error(errc::io_error, fmt::format("{} is not a regular file", file.string()));
  }
  manifest m;
  m.piece_size = piece_size;
  std::vector<std::byte> buffer(piece_size);
  for (;;) {
    const ssize_t n = read_full(fd.get(), buffer.data(), buffer.size());
    if (n < 0) return io_failure("cannot read", file, errno);
    if (n == 0) break;
    if (m.pieces.size() == max_pieces) {
      return make_error(errc::invalid_argument,
                        fmt::format("{} is larger than {} pieces of {} bytes", file.string(),
                                    max_pieces, piece_size));
    }
    const auto len = static_cast<std::size_t>(n);
    m.pieces.push_back(hash_piece(std::span<const std::byte>(buffer.data(), len)));
    m.size += len;
    if (len < buffer.size()) break;  // end of file
  }
  return m;
}

}  // namespace meshdeploy::swarm

#include "node/mesh/envelope.h"

namespace meshdeploy::mesh {

namespace {

void put_be(std::byte* p, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<std::byte>((v >> (8 * (n - 1 - i))) & 0xff);
}
std::uint64_t get_u64(std::span<const std::byte> b) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | std::to_integer<std::uint64_t>(b[i]);
  return v;
}

std::size_t header_size(std::string_view name) { return 1 + name.size() + 2 + 8 + 8; }

// Writes the header (everything before the body) at `p`: header_size(name) bytes.
void write_header(std::byte* p, std::string_view name, std::uint16_t port, std::uint64_t epoch,
                  std::uint64_t seq) {
  p[0] = static_cast<std::byte>(name.size());
  for (std::size_t i = 0; i < name.size(); ++i) p[1 + i] = static_cast<std::byte>(name[i]);
  p += 1 + name.size();
  put_be(p, port, 2);
  put_be(p + 2, epoch, 8);
  put_be(p + 10, seq, 8);
}

}  // namespace

std::vector<std::byte> encode_envelope(std::string_view name, std::uint16_t port,
                                       std::uint64_t epoch, std::uint64_t seq,
                                       std::span<const std::byte> body) {
  std::vector<std::byte> p;
  p.reserve(header_size(name) + body.size());
  p.resize(header_size(name));
  write_header(p.data(), name, port, epoch, seq);
  p.insert(p.end(), body.begin(), body.end());
  return p;
}

void prepend_envelope(gossip::frame_buffer& body, std::string_view name, std::uint16_t port,
                      std::uint64_t epoch, std::uint64_t seq) {
  write_header(body.prepend(header_size(name)).data(), name, port, epoch, seq);
}

std::optional<envelope> parse_envelope(std::span<const std::byte> p) {
  if (p.empty()) return std::nullopt;
  const std::size_t n = std::to_integer<std::size_t>(p[0]);
  if (n == 0 || p.size() < 1 + n + 2 + 16) return std::nullopt;
  envelope e;
  e.name.assign(reinterpret_cast<const char*>(p.data() + 1), n);
  e.port = static_cast<std::uint16_t>((std::to_integer<unsigned>(p[1 + n]) << 8) |
                                      std::to_integer<unsigned>(p[2 + n]));
  e.epoch = get_u64(p.subspan(3 + n, 8));
  e.seq = get_u64(p.subspan(11 + n, 8));
  e.body = p.subspan(19 + n);
  return e;
}

}  // namespace meshdeploy::mesh

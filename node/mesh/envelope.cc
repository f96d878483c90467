#include "node/mesh/envelope.h"

namespace meshdeploy::mesh {

namespace {

void put_u16(std::vector<std::byte>& out, std::uint16_t v) {
  out.push_back(static_cast<std::byte>(v >> 8));
  out.push_back(static_cast<std::byte>(v & 0xff));
}
void put_u64(std::vector<std::byte>& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_u64(std::span<const std::byte> b) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | std::to_integer<std::uint64_t>(b[i]);
  return v;
}

}  // namespace

std::vector<std::byte> encode_envelope(std::string_view name, std::uint16_t port,
                                       std::uint64_t epoch, std::uint64_t seq,
                                       std::span<const std::byte> body) {
  std::vector<std::byte> p;
  p.reserve(body.size() + name.size() + 19);
  p.push_back(static_cast<std::byte>(name.size()));
  for (char c : name) p.push_back(static_cast<std::byte>(c));
  put_u16(p, port);
  put_u64(p, epoch);
  put_u64(p, seq);
  p.insert(p.end(), body.begin(), body.end());
  return p;
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

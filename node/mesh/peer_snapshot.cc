#include "node/mesh/peer_snapshot.h"

#include <charconv>
#include <fstream>

namespace meshdeploy::mesh {

namespace {

// HOST:PORT (or [V6]:PORT) with a port in 1..65535 and a printable host.
bool plausible(const std::string& line) {
  const std::size_t colon = line.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= line.size()) return false;
  unsigned port = 0;
  const char* first = line.data() + colon + 1;
  const char* last = line.data() + line.size();
  auto [end, ec] = std::from_chars(first, last, port);
  if (ec != std::errc() || end != last || port == 0 || port > 65535) return false;
  for (std::size_t i = 0; i < colon; ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> load_peer_snapshot(const std::filesystem::path& path,
                                            std::size_t* skipped) {
  std::vector<std::string> out;
  std::size_t bad = 0;
  std::ifstream in(path);
  std::string line;
  while (out.size() < max_peer_snapshot && std::getline(in, line)) {
    if (line.size() > 300 || !plausible(line)) {
      ++bad;
      continue;
    }
    out.push_back(line);
  }
  if (skipped != nullptr) *skipped = bad;
  return out;
}

bool save_peer_snapshot(const std::filesystem::path& path, const std::vector<std::string>& peers) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (std::size_t i = 0; i < peers.size() && i < max_peer_snapshot; ++i) {
      out << peers[i] << "\n";
    }
    if (!out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace meshdeploy::mesh

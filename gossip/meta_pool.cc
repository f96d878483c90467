#include "gossip/meta_pool.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string_view>

namespace meshdeploy::gossip {
namespace {

// FNV-1a 64 over a few fields: fixed across standard libraries, cheap for short names.
void mix(std::uint64_t& h, std::string_view s) {
  for (char c : s) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  h ^= 0xff;
  h *= 0x100000001b3ull;
}

}  // namespace

std::size_t meta_pool::hash::operator()(const node_meta& m) const {
  std::uint64_t h = 0xcbf29ce484222325ull;
  mix(h, m.name);
  mix(h, m.addr.host);
  h ^= m.addr.port;
  h *= 0x100000001b3ull;
  // Tags rarely differ between two metas of the same name and address; the count is enough to
  // spread the common cases, equality decides the rest.
  h ^= m.tags.size();
  h *= 0x100000001b3ull;
  return static_cast<std::size_t>(h);
}

std::shared_ptr<const node_meta> meta_pool::intern(const node_meta& m) {
  auto it = set_.find(m);
  if (it != set_.end()) return *it;
  if (set_.size() >= sweep_at_) sweep();
  auto copy = std::make_shared<const node_meta>(m);
  set_.insert(copy);
  return copy;
}

void meta_pool::sweep() {
  // Copies only the pool holds are garbage. Amortized O(1) per intern: the next sweep waits until
  // the pool has doubled again.
  for (auto it = set_.begin(); it != set_.end();) {
    it = it->use_count() == 1 ? set_.erase(it) : std::next(it);
  }
  sweep_at_ = std::max<std::size_t>(64, 2 * set_.size());
}

}  // namespace meshdeploy::gossip

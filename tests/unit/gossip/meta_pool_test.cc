#include "gossip/meta_pool.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace meshdeploy::gossip {
namespace {

node_meta meta(const std::string& name, std::uint16_t port = 7946) {
  return node_meta{name, address{"10.0.0.1", port}, {}, 1, 1};
}

TEST(MetaPoolTest, EqualMetadataSharesOneCopy) {
  meta_pool p;
  auto a = p.intern(meta("a"));
  auto b = p.intern(meta("a"));
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(*a, meta("a"));
  EXPECT_EQ(p.size(), 1u);
}

TEST(MetaPoolTest, AnyDifferenceGivesAnotherCopy) {
  meta_pool p;
  auto a = p.intern(meta("a"));
  auto port = p.intern(meta("a", 7947));
  node_meta tagged = meta("a");
  tagged.tags["role"] = "web";
  auto tags = p.intern(tagged);
  node_meta versions = meta("a");
  versions.protocol_max = 2;
  auto ver = p.intern(versions);
  EXPECT_NE(a.get(), port.get());
  EXPECT_NE(a.get(), tags.get());
  EXPECT_NE(a.get(), ver.get());
  EXPECT_EQ(*tags, tagged);
  EXPECT_EQ(p.size(), 4u);
}

TEST(MetaPoolTest, ForgetsCopiesNobodyHolds) {
  meta_pool p;
  std::vector<std::shared_ptr<const node_meta>> held;
  for (int i = 0; i < 1000; ++i) {
    auto m = p.intern(meta("n" + std::to_string(i)));
    if (i % 10 == 0) held.push_back(m);
  }
  // 100 held; sweeps happen when the pool doubles, so it stays within 2x of what is held
  // (plus the sweep floor).
  EXPECT_LE(p.size(), 2 * held.size() + 64);
  for (const auto& m : held) EXPECT_EQ(p.intern(*m).get(), m.get());
}

}  // namespace
}  // namespace meshdeploy::gossip

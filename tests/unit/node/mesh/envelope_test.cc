#include "node/mesh/envelope.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace meshdeploy::mesh {
namespace {

TEST(EnvelopeTest, PrependWritesTheBytesEncodeWrites) {
  const std::vector<std::byte> body(70000, std::byte{0x33});
  for (const std::string& name :
       {std::string("a"), std::string("node-17"), std::string(255, 'n')}) {
    gossip::frame_buffer b = gossip::frame_buffer::copy_of(body);
    const std::byte* at = b.bytes().data();
    prepend_envelope(b, name, 7946, 0x0102030405060708ull, 0xfffffffffffffffeull);
    EXPECT_EQ(b.to_vector(),
              encode_envelope(name, 7946, 0x0102030405060708ull, 0xfffffffffffffffeull, body))
        << name.size();
    EXPECT_EQ(b.bytes().data() + b.size() - body.size(), at);  // the body did not move
    auto e = parse_envelope(b.bytes());
    ASSERT_TRUE(e);
    EXPECT_EQ(e->name, name);
    EXPECT_EQ(e->port, 7946);
    EXPECT_EQ(e->epoch, 0x0102030405060708ull);
    EXPECT_EQ(e->seq, 0xfffffffffffffffeull);
    EXPECT_EQ(e->body.data(), at);
    EXPECT_EQ(e->body.size(), body.size());
  }
}

TEST(EnvelopeTest, ParseRefusesShortOrNamelessInput) {
  const auto ok = encode_envelope("n", 1, 2, 3, {});
  for (std::size_t cut = 0; cut < ok.size(); ++cut) {
    EXPECT_FALSE(parse_envelope(std::span(ok).first(cut))) << cut;
  }
  EXPECT_TRUE(parse_envelope(ok));
  auto nameless = ok;
  nameless[0] = std::byte{0};
  EXPECT_FALSE(parse_envelope(nameless));
}

}  // namespace
}  // namespace meshdeploy::mesh

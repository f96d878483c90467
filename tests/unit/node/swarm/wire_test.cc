#include "node/swarm/wire.h"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cstring>
#include <random>

namespace meshdeploy::swarm {
namespace {

const std::string kId(64, 'b');

std::vector<std::byte> bytes_of(const msgpack::sbuffer& b) {
  std::vector<std::byte> out(b.size());
  std::memcpy(out.data(), b.data(), b.size());
  return out;
}

TEST(SwarmWireTest, EveryMessageRoundTrips) {
  const std::vector<swarm_message> all = {
      hello_msg{"web", kId, {std::byte{0xa0}, std::byte{0x01}}, false},
      hello_msg{"web", kId, {}, true},
      have_msg{kId, 7},
      request_msg{kId, 0xfffffffe, false},
      request_msg{kId, 1, true},
      piece_msg{kId, 3, std::vector<std::byte>(1000, std::byte{9})},
      none_msg{kId},
      busy_msg{kId, busy_hello},
      manifest_request_msg{"web", kId},
      manifest_msg{kId, std::vector<std::byte>(64, std::byte{1})},
  };
  for (const auto& m : all) {
    auto d = decode_swarm_message(encode_swarm_message(m));
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d.value(), m);
  }
}

TEST(SwarmWireTest, RefusesWhatItDoesNotKnow) {
  auto expect_error = [](const msgpack::sbuffer& b, const std::string& part) {
    auto d = decode_swarm_message(bytes_of(b));
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message.find(part), std::string::npos) << d.error().message;
  };
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> p(b);
    p.pack_array(3);
    p.pack(1);  // the single-source protocol that preceded the swarm
    p.pack(5);
    p.pack(kId);
    expect_error(b, "protocol version 1");
  }
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> p(b);
    p.pack_array(3);
    p.pack(2);
    p.pack(99);
    p.pack(kId);
    expect_error(b, "unknown type 99");
  }
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> p(b);
    p.pack_array(3);
    p.pack(2);
    p.pack(5);
    p.pack(std::string(64, 'G'));
    expect_error(b, "64 lowercase hex");
  }
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> p(b);
    p.pack_array(5);
    p.pack(2);
    p.pack(3);
    p.pack(kId);
    p.pack(-1);
    p.pack(false);
    expect_error(b, "piece index");
  }
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> p(b);
    p.pack_array(5);
    p.pack(2);
    p.pack(4);
    p.pack(kId);
    p.pack(1);
    p.pack_bin(0);
    expect_error(b, "piece data");
  }
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> p(b);
    p.pack_array(6);
    p.pack(2);
    p.pack(1);
    p.pack(std::string(max_app_bytes + 1, 'a'));
    p.pack(kId);
    p.pack_bin(0);
    p.pack(false);
    expect_error(b, "app");
  }
  {
    auto enc = encode_swarm_message(none_msg{kId});
    enc.push_back(std::byte{0});
    auto d = decode_swarm_message(enc);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message.find("trailing"), std::string::npos);
  }
  {
    std::vector<std::byte> huge(max_swarm_wire_bytes + 1);
    EXPECT_FALSE(decode_swarm_message(huge));
  }
}

// The receive path: a piece's data is a view into the message, not a copy.
TEST(SwarmWireTest, DecodeViewLeavesThePieceInPlace) {
  const std::vector<std::byte> data(256 * 1024, std::byte{3});
  const auto enc = encode_swarm_message(piece_msg{kId, 9, data});
  auto v = decode_swarm_view(enc);
  ASSERT_TRUE(v) << v.error().message;
  const auto* p = std::get_if<piece_view>(&v.value());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->id, kId);
  EXPECT_EQ(p->index, 9u);
  ASSERT_EQ(p->data.size(), data.size());
  EXPECT_EQ(p->data.data(), enc.data() + enc.size() - data.size());
  // Other messages decode as decode_swarm_message decodes them.
  auto hello = encode_swarm_message(hello_msg{"web", kId, {std::byte{1}}, true});
  auto hv = decode_swarm_view(hello);
  ASSERT_TRUE(hv);
  EXPECT_EQ(std::get<hello_msg>(hv.value()), (hello_msg{"web", kId, {std::byte{1}}, true}));
}

TEST(SwarmWireTest, PrependPieceHeaderBuildsTheBytesEncodeBuilds) {
  for (std::size_t n : {std::size_t{1}, std::size_t{31}, std::size_t{255}, std::size_t{65535},
                        std::size_t{65536}, std::size_t{max_piece_size}}) {
    const std::vector<std::byte> data(n, std::byte{0x77});
    gossip::frame_buffer b = gossip::frame_buffer::copy_of(data);
    const std::byte* at = b.bytes().data();
    prepend_piece_header(b, kId, 0xfffffffe);
    EXPECT_EQ(b.to_vector(), encode_swarm_message(piece_msg{kId, 0xfffffffe, data})) << n;
    EXPECT_EQ(b.bytes().data() + b.size() - n, at) << n;
  }
}

// Hostile lengths: a bin header that claims more or fewer bytes than the message holds, empty or
// oversized pieces; both decoders refuse them alike.
TEST(SwarmWireTest, ViewDecoderRefusesHostileLengths) {
  const auto valid = encode_swarm_message(piece_msg{kId, 1, std::vector<std::byte>(1000)});
  for (std::size_t cut = 0; cut < valid.size(); ++cut) {
    std::vector<std::byte> b(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_FALSE(decode_swarm_view(b)) << cut;
  }
  auto longer = valid;
  longer.push_back(std::byte{0});
  EXPECT_FALSE(decode_swarm_view(longer));
  {
    // A bin32 header claiming max_piece_size + 1 bytes, which follow.
    msgpack::sbuffer sb;
    msgpack::packer<msgpack::sbuffer> p(sb);
    p.pack_array(5);
    p.pack(2);
    p.pack(4);
    p.pack(kId);
    p.pack(1);
    const std::vector<char> big(max_piece_size + 1, 'x');
    p.pack_bin(static_cast<std::uint32_t>(big.size()));
    p.pack_bin_body(big.data(), static_cast<std::uint32_t>(big.size()));
    auto v = decode_swarm_view(bytes_of(sb));
    ASSERT_FALSE(v);
    EXPECT_NE(v.error().message.find("piece data"), std::string::npos) << v.error().message;
  }
  {
    // A bin32 header claiming 4 GiB - 1 with 10 bytes behind it.
    auto b = encode_swarm_message(piece_msg{kId, 1, std::vector<std::byte>(10)});
    const std::size_t hdr = b.size() - 10 - 2;  // bin8 header: 0xc4 then the length
    ASSERT_EQ(b[hdr], std::byte{0xc4});
    std::vector<std::byte> lie(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(hdr));
    for (int x : {0xc6, 0xff, 0xff, 0xff, 0xff}) lie.push_back(static_cast<std::byte>(x));
    lie.insert(lie.end(), 10, std::byte{0});
    EXPECT_FALSE(decode_swarm_view(lie));
    EXPECT_FALSE(decode_swarm_message(lie));
  }
  std::mt19937_64 rng(11);
  for (int i = 0; i < 5000; ++i) {
    auto b = valid;
    b[rng() % b.size()] = static_cast<std::byte>(rng());
    auto v = decode_swarm_view(b);
    auto m = decode_swarm_message(b);
    EXPECT_EQ(v.has_value(), m.has_value()) << i;
  }
}

TEST(SwarmWireTest, GarbageNeverCrashes) {
  std::mt19937_64 rng(7);
  const auto valid = encode_swarm_message(piece_msg{kId, 3, std::vector<std::byte>(64)});
  for (int round = 0; round < 20000; ++round) {
    std::vector<std::byte> b = valid;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<std::byte>(rng());
    if (rng() % 4 == 0) b.resize(rng() % b.size());
    (void)decode_swarm_message(b);
  }
}

TEST(SwarmWireTest, BitsFollowTheDocumentedLayout) {
  std::vector<bool> held(10, false);
  held[0] = held[9] = true;
  const auto bits = make_bits(held);
  ASSERT_EQ(bits.size(), 2u);
  EXPECT_EQ(bits[0], std::byte{0x80});
  EXPECT_EQ(bits[1], std::byte{0x40});
  EXPECT_TRUE(bits_get(bits, 0));
  EXPECT_TRUE(bits_get(bits, 9));
  EXPECT_FALSE(bits_get(bits, 1));
  EXPECT_FALSE(bits_get(bits, 100));
}

}  // namespace
}  // namespace meshdeploy::swarm

#include "gossip/codec.h"

#include "gossip/errc.h"

#include <gtest/gtest.h>

#include <random>

namespace meshdeploy::gossip {
namespace {

node_meta sample_meta() {
  return node_meta{"web-1", {"10.0.0.7", 7946}, {{"env", "prod"}, {"role", "web"}}, 1, 1};
}

std::vector<message> samples() {
  return {
      ping_msg{7, "web-2", "web-1", {"10.0.0.7", 7946}},
      ping_req_msg{8, "web-3", {"10.0.0.9", 7946}, "web-1", {"10.0.0.7", 7946}, true},
      ack_msg{4294967295u},
      nack_msg{0},
      suspect_msg{incarnation(3), "web-3", "web-1"},
      alive_msg{incarnation(18446744073709551615ull), sample_meta()},
      dead_msg{incarnation(9), "web-4", "web-4"},
      push_pull_msg{
          true,
          true,
          "web-1",
          {"10.0.0.7", 7946},
          {member{sample_meta(), incarnation(2), member_state::suspect},
           member{node_meta{"db", {"::1", 1}, {}, 1, 1}, incarnation(0), member_state::left}}},
      user_msg{"web-1", 42, 200, {std::byte{0}, std::byte{255}, std::byte{1}}},
      digest_msg{"web-1", {"10.0.0.7", 7946}, 0xdeadbeefcafef00dull, 12},
      direct_msg{"web-1", {"10.0.0.7", 7946}, 2, {std::byte{0}, std::byte{9}}},
  };
}

std::vector<std::byte> raw(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int x : v) out.push_back(static_cast<std::byte>(x));
  return out;
}

TEST(CodecTest, EveryMessageTypeRoundTrips) {
  for (const auto& m : samples()) {
    const auto bytes = encode(m);
    const auto ch = type_of(m) == msg_type::push_pull || type_of(m) == msg_type::direct
                        ? channel::stream
                        : channel::packet;
    auto got = decode(bytes, ch);
    ASSERT_TRUE(got) << static_cast<int>(type_of(m)) << ": " << got.error().message;
    ASSERT_EQ(got.value().size(), 1u);
    EXPECT_EQ(got.value()[0], m) << "type " << static_cast<int>(type_of(m));
  }
}

TEST(CodecTest, DirectMessageIsTypeElevenAndALargePayloadRoundTrips) {
  direct_msg m{"web-1", {"10.0.0.7", 7946}, 1, std::vector<std::byte>(1u << 20, std::byte{0x5a})};
  const auto bytes = encode(m);
  EXPECT_EQ(static_cast<int>(bytes[1]), 11);
  EXPECT_LE(bytes.size(), max_stream_bytes);
  auto got = decode(bytes, channel::stream);
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got.value().size(), 1u);
  EXPECT_EQ(std::get<direct_msg>(got.value()[0]), m);
}

TEST(CodecTest, EnvelopeCarriesMagicVersionAndTypeNumber) {
  const auto bytes = encode(ack_msg{1});
  ASSERT_GE(bytes.size(), 2u);
  EXPECT_EQ(static_cast<int>(bytes[0]), 0xB1);
  EXPECT_EQ(static_cast<int>(bytes[1]), 2);  // ack is type 2, forever
}

TEST(CodecTest, CompoundExpandsInOrder) {
  std::vector<std::vector<std::byte>> parts;
  auto all = samples();
  all.pop_back();              // direct is stream-only
  all.erase(all.begin() + 7);  // push_pull is stream-only
  for (const auto& m : all) parts.push_back(encode(m));
  auto got = decode(encode_compound(parts), channel::packet);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got.value(), all);
}

TEST(CodecTest, ExtraTrailingFieldsFromNewerVersionsAreIgnored) {
  // ack body [seq, "future field"] : fixarray(2), 5, fixstr "x"
  auto got = decode(raw({0xB1, 2, 0x92, 5, 0xA1, 'x'}), channel::packet);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got.value()[0], message{ack_msg{5}});
}

// Strings and binaries are referenced, not copied, while decoding; ext objects are not, and
// stay refused even in an ignored trailing field (as before referencing).
TEST(CodecTest, ExtObjectsAreStillRefusedEvenAsTrailingFields) {
  // ack body [seq, fixext1(type 1, 0x00)]
  auto got = decode(raw({0xB1, 2, 0x92, 5, 0xD4, 1, 0}), channel::packet);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, make_error_code(errc::too_large)) << got.error().message;
  // ... and on the direct path.
  direct_msg m{"web-1", {"10.0.0.7", 7946}, 3, {std::byte{1}}};
  auto bytes = encode(m);
  ASSERT_EQ(static_cast<int>(bytes[2]), 0x94);  // fixarray(4)
  bytes[2] = std::byte{0x95};
  for (int x : {0xD4, 1, 0}) bytes.push_back(static_cast<std::byte>(x));
  EXPECT_FALSE(decode_direct(bytes));
  EXPECT_FALSE(decode(bytes, channel::stream));
}

struct bad_input {
  const char* what;
  std::vector<std::byte> bytes;
  channel ch;
  errc want;
};

TEST(CodecTest, RejectsMalformedInputWithTheRightCode) {
  std::vector<std::vector<std::byte>> nested_parts{encode_compound({encode(ack_msg{1})})};
  auto ack = encode(ack_msg{1});
  std::vector<std::byte> truncated(ack.begin(), ack.end() - 1);
  std::vector<std::byte> trailing = ack;
  trailing.push_back(std::byte{0});
  node_meta long_name = sample_meta();
  long_name.name = std::string(max_name_bytes + 1, 'n');
  node_meta many_tags = sample_meta();
  for (int i = 0; i < 40; ++i) many_tags.tags["k" + std::to_string(i)] = "v";
  const std::vector<bad_input> cases = {
      {"empty", {}, channel::packet, errc::malformed},
      {"one byte", raw({0xB1}), channel::packet, errc::malformed},
      {"bad magic", raw({0x41, 2, 0x91, 1}), channel::packet, errc::malformed},
      {"future version", raw({0xB2, 2, 0x91, 1}), channel::packet, errc::version_unsupported},
      {"version zero", raw({0xB0, 2, 0x91, 1}), channel::packet, errc::version_unsupported},
      {"unknown type", raw({0xB1, 200, 0x91, 1}), channel::packet, errc::unknown_type},
      {"no body", raw({0xB1, 2}), channel::packet, errc::malformed},
      {"truncated", truncated, channel::packet, errc::malformed},
      {"trailing bytes", trailing, channel::packet, errc::malformed},
      {"body not array", raw({0xB1, 2, 0x05}), channel::packet, errc::malformed},
      {"too few fields", raw({0xB1, 2, 0x90}), channel::packet, errc::malformed},
      {"negative seq", raw({0xB1, 2, 0x91, 0xFF}), channel::packet, errc::malformed},
      {"seq over 32 bits", raw({0xB1, 2, 0x91, 0xCF, 0, 0, 0, 1, 0, 0, 0, 0}), channel::packet,
       errc::malformed},
      {"push_pull on packet", encode(samples()[7]), channel::packet, errc::unknown_type},
      {"direct on packet", encode(samples()[10]), channel::packet, errc::unknown_type},
      {"direct payload over its limit",
       encode(direct_msg{"a", {"h", 1}, 1, std::vector<std::byte>(max_direct_payload_bytes + 1)}),
       channel::stream, errc::too_large},
      {"nested compound", encode_compound(nested_parts), channel::packet, errc::malformed},
      {"packet over 1400", std::vector<std::byte>(1401, std::byte{0xB1}), channel::packet,
       errc::too_large},
      {"name too long", encode(alive_msg{incarnation(1), long_name}), channel::packet,
       errc::too_large},
      {"too many tags", encode(alive_msg{incarnation(1), many_tags}), channel::packet,
       errc::too_large},
      // array32 claiming 4 billion elements in 7 bytes
      {"huge array header", raw({0xB1, 2, 0xDD, 0xFF, 0xFF, 0xFF, 0xFF}), channel::packet,
       errc::too_large},
      {"empty compound", raw({0xB1, 8, 0x90}), channel::packet, errc::malformed},
  };
  for (const auto& c : cases) {
    auto got = decode(c.bytes, c.ch);
    ASSERT_FALSE(got) << c.what;
    EXPECT_EQ(got.error().code, make_error_code(c.want)) << c.what << ": " << got.error().message;
    EXPECT_FALSE(got.error().message.empty()) << c.what;
  }
}

TEST(CodecTest, ErrorMessagesNameTheMessageAndField) {
  // alive with a port that does not fit 16 bits.
  auto got = decode(
      raw({0xB1, 5, 0x92, 1, 0x95, 0xA1, 'a', 0x92, 0xA1, 'h', 0xCE, 0, 1, 0, 0, 0x80, 1, 1}),
      channel::packet);
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().message.find("alive"), std::string::npos) << got.error().message;
  EXPECT_NE(got.error().message.find("meta.addr.port"), std::string::npos) << got.error().message;
}

TEST(CodecTest, ValidateMetaEnforcesLimits) {
  EXPECT_TRUE(validate_meta(sample_meta()));
  node_meta m = sample_meta();
  m.name = "";
  EXPECT_FALSE(validate_meta(m));
  m = sample_meta();
  m.tags["big"] = std::string(max_tag_value_bytes + 1, 'v');
  EXPECT_FALSE(validate_meta(m));
  m = sample_meta();
  for (int i = 0; i < 30; ++i) m.tags["key" + std::to_string(i)] = std::string(200, 'v');
  auto r = validate_meta(m);  // each tag within limits, all together over a packet
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::too_large));
}

// The swarm's receive path: a direct message as a view, its payload never copied.
TEST(CodecTest, DecodeDirectViewsThePayloadInPlace) {
  direct_msg m{"web-1", {"10.0.0.7", 7946}, 3, std::vector<std::byte>(300000, std::byte{0x42})};
  const auto bytes = encode(m);
  auto v = decode_direct(bytes);
  ASSERT_TRUE(v) << v.error().message;
  ASSERT_TRUE(v.value().has_value());
  const direct_view& d = *v.value();
  EXPECT_EQ(d.from, "web-1");
  EXPECT_EQ(d.from_addr, m.from_addr);
  EXPECT_EQ(d.user_type, 3);
  ASSERT_EQ(d.payload.size(), m.payload.size());
  // The payload is the tail of the encoded bytes themselves.
  EXPECT_EQ(d.payload.data(), bytes.data() + bytes.size() - m.payload.size());
  // Any other message type: nullopt (decode() handles it).
  for (const auto& other : samples()) {
    if (type_of(other) == msg_type::direct) continue;
    auto r = decode_direct(encode(other));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(r.value().has_value());
  }
}

TEST(CodecTest, PrependDirectBuildsTheBytesEncodeBuilds) {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{255}, std::size_t{65536},
                        std::size_t{262144}}) {
    direct_msg m{"a-node-name", {"fe80::1", 65535}, 3, std::vector<std::byte>(n, std::byte{7})};
    frame_buffer b = frame_buffer::copy_of(m.payload);
    const std::byte* payload_at = b.bytes().data();
    prepend_direct(b, m.from, m.from_addr, m.user_type);
    EXPECT_EQ(b.to_vector(), encode(m)) << n;
    EXPECT_EQ(b.bytes().data() + b.size() - n, payload_at) << n;  // not moved
  }
}

TEST(CodecTest, DecodeDirectRejectsWhatDecodeRejects) {
  const direct_msg m{"web-1", {"10.0.0.7", 7946}, 3, std::vector<std::byte>(64, std::byte{1})};
  const auto valid = encode(m);
  // A bin header that claims more (or fewer) bytes than follow; every cut of the message.
  for (std::size_t cut = 0; cut < valid.size(); ++cut) {
    std::vector<std::byte> b(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(cut));
    auto v = decode_direct(b);
    auto d = decode(b, channel::stream);
    EXPECT_EQ(v.has_value(), d.has_value()) << cut;
    if (!v && !d) {
      EXPECT_EQ(v.error().code, d.error().code) << cut;
    }
  }
  auto longer = valid;
  longer.push_back(std::byte{0});
  EXPECT_FALSE(decode_direct(longer));
  // Over the stream limit: too_large before anything is parsed.
  std::vector<std::byte> huge(max_stream_bytes + 1);
  huge[0] = static_cast<std::byte>(envelope_magic | protocol_version_max);
  huge[1] = static_cast<std::byte>(msg_type::direct);
  auto h = decode_direct(huge);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, make_error_code(errc::too_large));
  // Random mutations: decode_direct and decode agree on accept / reject.
  std::mt19937_64 rng(99);
  for (int i = 0; i < 5000; ++i) {
    auto b = valid;
    b[rng() % b.size()] = static_cast<std::byte>(rng());
    auto v = decode_direct(b);
    auto d = decode(b, channel::stream);
    const bool v_ok = v && v.value().has_value();
    const bool d_direct =
        d && d.value().size() == 1 && std::holds_alternative<direct_msg>(d.value()[0]);
    EXPECT_EQ(v_ok, d_direct) << i;
    if (v_ok && d_direct) {
      const auto& dm = std::get<direct_msg>(d.value()[0]);
      EXPECT_TRUE(std::equal(dm.payload.begin(), dm.payload.end(), v.value()->payload.begin(),
                             v.value()->payload.end()));
    }
  }
}

TEST(CodecTest, MutatedAndRandomBytesNeverCrash) {
  std::mt19937_64 rng(1234);
  auto valid = samples();
  std::size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    auto bytes = encode(valid[i % valid.size()]);
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      bytes[rng() % bytes.size()] = static_cast<std::byte>(rng());
    }
    if (rng() % 8 == 0) bytes.resize(rng() % (bytes.size() + 1));
    auto got = decode(bytes, (i % 2) ? channel::packet : channel::stream);
    if (got) ++accepted;
  }
  // Some mutations still decode (a changed seq is a valid seq); most do not.
  EXPECT_GT(accepted, 0u);
  EXPECT_LT(accepted, 20000u);
}

}  // namespace
}  // namespace meshdeploy::gossip

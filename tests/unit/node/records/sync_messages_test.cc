#include "node/records/sync_messages.h"

#include "node/records/errc.h"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cstring>
#include <random>
#include <vector>

namespace meshdeploy::records {
namespace {

std::vector<std::byte> bytes_of(const msgpack::sbuffer& buf) {
  std::vector<std::byte> out(buf.size());
  std::memcpy(out.data(), buf.data(), buf.size());
  return out;
}

void round_trip(const sync_message& m) {
  const auto bytes = encode_sync_message(m);
  auto back = decode_sync_message(bytes);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back.value(), m);
}

TEST(SyncMessagesTest, EveryMessageTypeRoundTrips) {
  push_msg push;
  push.sync = true;
  push.records = {std::vector<std::byte>{std::byte{1}, std::byte{2}}, {}};
  push.tombstones = {{"\x86id", 7}};
  round_trip(push);
  round_trip(push_msg{});
  round_trip(digest_msg{0xffffffffffffffffULL, 10'000});
  buckets_msg b;
  b.root = 5;
  for (std::size_t i = 0; i < sync_bucket_count; ++i) b.digests.push_back(i * 1'000'003);
  round_trip(b);
  round_trip(entries_msg{{0, 255}, {{"\x01id", 1, 2}, {std::string(300, 'x'), 3, 4}}});
  round_trip(want_msg{{"a", std::string(1, '\0')}});
}

TEST(SyncMessagesTest, UnknownVersionIsUnsupported) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> p(buf);
  p.pack_array(4);
  p.pack(2);
  p.pack(2);
  p.pack(1);
  p.pack(1);
  auto r = decode_sync_message(bytes_of(buf));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::version_unsupported));
}

TEST(SyncMessagesTest, UnknownTypeAndWrongFieldsAreMalformedWithFieldName) {
  {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> p(buf);
    p.pack_array(2);
    p.pack(1);
    p.pack(99);
    auto r = decode_sync_message(bytes_of(buf));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, make_error_code(errc::malformed));
    EXPECT_NE(r.error().message.find("type 99"), std::string::npos);
  }
  {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> p(buf);
    p.pack_array(4);
    p.pack(1);
    p.pack(2);
    p.pack("root");
    p.pack(1);
    auto r = decode_sync_message(bytes_of(buf));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("root"), std::string::npos);
  }
  {
    // buckets must have exactly 256 digests
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> p(buf);
    p.pack_array(4);
    p.pack(1);
    p.pack(3);
    p.pack(1);
    p.pack_array(1);
    p.pack(1);
    EXPECT_FALSE(decode_sync_message(bytes_of(buf)));
  }
  {
    // bucket numbers must be < 256
    auto bytes = encode_sync_message(entries_msg{{300}, {}});
    EXPECT_FALSE(decode_sync_message(bytes));
  }
}

TEST(SyncMessagesTest, TrailingBytesAndOversizeAreRejected) {
  auto bytes = encode_sync_message(digest_msg{1, 2});
  bytes.push_back(std::byte{0});
  EXPECT_FALSE(decode_sync_message(bytes));
  std::vector<std::byte> huge(max_sync_message_bytes + 1);
  auto r = decode_sync_message(huge);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::too_large));
  // An id over the limit.
  auto long_id = encode_sync_message(want_msg{{std::string(max_sync_id_bytes + 1, 'x')}});
  auto r2 = decode_sync_message(long_id);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, make_error_code(errc::too_large));
}

TEST(SyncMessagesTest, RandomAndTruncatedBytesNeverCrash) {
  std::mt19937_64 rng(42);
  push_msg push;
  push.records = {std::vector<std::byte>(50, std::byte{7})};
  push.tombstones = {{"\x86x", 1}};
  const auto valid = encode_sync_message(push);
  for (std::size_t n = 0; n < valid.size(); ++n) {
    EXPECT_FALSE(decode_sync_message(std::span(valid.data(), n)));
  }
  for (int i = 0; i < 20'000; ++i) {
    auto bytes = valid;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      bytes[rng() % bytes.size()] = static_cast<std::byte>(rng());
    }
    auto r = decode_sync_message(bytes);
    if (r) {
      // Accepted input re-encodes to something that decodes to the same message.
      auto again = decode_sync_message(encode_sync_message(r.value()));
      ASSERT_TRUE(again);
      EXPECT_EQ(again.value(), r.value());
    }
  }
}

TEST(SyncMessagesTest, SizeBoundsCoverEncodedSize) {
  entries_msg m;
  std::size_t bound = sync_message_overhead;
  for (int i = 0; i < 100; ++i) {
    entry_summary e{std::string(static_cast<std::size_t>(i * 7), 'k'), ~0ULL, ~0ULL};
    bound += encoded_size_bound(e);
    m.entries.push_back(e);
  }
  EXPECT_LE(encode_sync_message(m).size(), bound);
  push_msg p;
  bound = sync_message_overhead;
  for (int i = 0; i < 50; ++i) {
    p.records.emplace_back(static_cast<std::size_t>(i * 1000));
    bound += encoded_size_bound_record(p.records.back().size());
    p.tombstones.push_back({std::string(static_cast<std::size_t>(i), 't'), ~0ULL});
    bound += encoded_size_bound(p.tombstones.back());
  }
  EXPECT_LE(encode_sync_message(p).size(), bound);
}

}  // namespace
}  // namespace meshdeploy::records

#include "node/records/record.h"

#include "node/records/errc.h"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace meshdeploy::records {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

record sample() {
  record r;
  r.type = record_type::intent;
  r.key = "d-1";
  r.version = 1;
  r.writer.fill(0xab);
  r.time_ms = -42;  // negative times are representable (and signed)
  r.via = "node-1";
  r.payload = {std::byte{0x91}, std::byte{0xa1}, std::byte{'x'}};
  r.sig.fill(0x5c);
  return r;
}

std::vector<std::byte> bytes_of(const msgpack::sbuffer& b) {
  std::vector<std::byte> out(b.size());
  std::memcpy(out.data(), b.data(), b.size());
  return out;
}

void pack_bin(packer& p, std::size_t n, char fill = 'k') {
  const std::string body(n, fill);
  p.pack_bin(static_cast<std::uint32_t>(n));
  p.pack_bin_body(body.data(), static_cast<std::uint32_t>(n));
}

// Writes the nine envelope fields, letting one of them be replaced.
struct envelope_writer {
  std::uint32_t count = 9;
  std::function<void(packer&)> format = [](packer& p) { p.pack(1); };
  std::function<void(packer&)> type = [](packer& p) { p.pack(6); };
  std::function<void(packer&)> key = [](packer& p) { p.pack(std::string("d-1")); };
  std::function<void(packer&)> version = [](packer& p) { p.pack(1); };
  std::function<void(packer&)> writer = [](packer& p) { pack_bin(p, 32); };
  std::function<void(packer&)> time = [](packer& p) { p.pack(5); };
  std::function<void(packer&)> via = [](packer& p) { p.pack(std::string("n")); };
  std::function<void(packer&)> payload = [](packer& p) { pack_bin(p, 3); };
  std::function<void(packer&)> sig = [](packer& p) { pack_bin(p, 64); };

  std::vector<std::byte> bytes() const {
    msgpack::sbuffer b;
    packer p(b);
    p.pack_array(count);
    const std::function<void(packer&)>* all[] = {&format, &type, &key,     &version, &writer,
                                                 &time,   &via,  &payload, &sig};
    for (std::uint32_t i = 0; i < std::min<std::uint32_t>(count, 9); ++i) (*all[i])(p);
    for (std::uint32_t i = 9; i < count; ++i) p.pack_nil();
    return bytes_of(b);
  }
};

TEST(RecordTest, EnvelopeRoundTrips) {
  const record r = sample();
  auto back = decode(encode(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back.value(), r);
  EXPECT_EQ(encode(back.value()), encode(r));
  EXPECT_EQ(hash_of(back.value()), hash_of_encoded(encode(r)));
}

TEST(RecordTest, ValidEnvelopeFromWriterDecodes) {
  auto r = decode(envelope_writer{}.bytes());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().type, record_type::intent);
  EXPECT_EQ(r.value().time_ms, 5);
}

TEST(RecordTest, SigningBytesAreDomainSeparatedAndExcludeSignature) {
  record r = sample();
  const auto a = signing_bytes(r);
  const std::string_view domain{"meshdeploy/record/v1\0", 21};
  ASSERT_GT(a.size(), domain.size());
  EXPECT_EQ(std::memcmp(a.data(), domain.data(), domain.size()), 0);
  r.sig.fill(0);
  EXPECT_EQ(signing_bytes(r), a);
  r.via = "node-2";
  EXPECT_NE(signing_bytes(r), a);
}

struct bad_case {
  const char* what;
  std::function<void(envelope_writer&)> change;
  errc code;
  const char* message_part;
};

TEST(RecordTest, EveryDecodeErrorNamesTheField) {
  const std::vector<bad_case> cases = {
      {"format 2", [](envelope_writer& w) { w.format = [](packer& p) { p.pack(2); }; },
       errc::version_unsupported, "format 2"},
      {"format string",
       [](envelope_writer& w) { w.format = [](packer& p) { p.pack(std::string("1")); }; },
       errc::malformed, "field format"},
      {"8 fields", [](envelope_writer& w) { w.count = 8; }, errc::malformed,
       "8 fields, expected 9"},
      {"10 fields", [](envelope_writer& w) { w.count = 10; }, errc::malformed,
       "10 fields, expected 9"},
      {"type 0", [](envelope_writer& w) { w.type = [](packer& p) { p.pack(0); }; }, errc::malformed,
       "unknown type 0"},
      {"type 12", [](envelope_writer& w) { w.type = [](packer& p) { p.pack(12); }; },
       errc::malformed, "unknown type 12"},
      {"type 300", [](envelope_writer& w) { w.type = [](packer& p) { p.pack(300); }; },
       errc::malformed, "field type"},
      {"key int", [](envelope_writer& w) { w.key = [](packer& p) { p.pack(7); }; }, errc::malformed,
       "field key is not a string"},
      {"key empty", [](envelope_writer& w) { w.key = [](packer& p) { p.pack(std::string()); }; },
       errc::malformed, "field key is empty"},
      {"key long",
       [](envelope_writer& w) { w.key = [](packer& p) { p.pack(std::string(641, 'k')); }; },
       errc::too_large, "field key is 641 bytes, limit 640"},
      {"version 0", [](envelope_writer& w) { w.version = [](packer& p) { p.pack(0); }; },
       errc::malformed, "field version is 0"},
      {"version negative", [](envelope_writer& w) { w.version = [](packer& p) { p.pack(-1); }; },
       errc::malformed, "field version"},
      {"writer 31", [](envelope_writer& w) { w.writer = [](packer& p) { pack_bin(p, 31); }; },
       errc::malformed, "field writer is not 32 bytes"},
      {"writer str",
       [](envelope_writer& w) { w.writer = [](packer& p) { p.pack(std::string(32, 'k')); }; },
       errc::malformed, "field writer"},
      {"time str",
       [](envelope_writer& w) { w.time = [](packer& p) { p.pack(std::string("now")); }; },
       errc::malformed, "field time_ms"},
      {"time overflow",
       [](envelope_writer& w) {
         w.time = [](packer& p) { p.pack(std::numeric_limits<std::uint64_t>::max()); };
       },
       errc::malformed, "field time_ms"},
      {"via long",
       [](envelope_writer& w) { w.via = [](packer& p) { p.pack(std::string(129, 'v')); }; },
       errc::too_large, "field via is 129 bytes, limit 128"},
      {"payload str",
       [](envelope_writer& w) { w.payload = [](packer& p) { p.pack(std::string("x")); }; },
       errc::malformed, "field payload is not bin"},
      {"payload too large",
       [](envelope_writer& w) {
         w.payload = [](packer& p) { pack_bin(p, max_payload_bytes + 1); };
       },
       errc::too_large, "payload is 1048577 bytes"},
      {"sig 63", [](envelope_writer& w) { w.sig = [](packer& p) { pack_bin(p, 63); }; },
       errc::malformed, "field signature is not 64 bytes"},
  };
  for (const auto& c : cases) {
    envelope_writer w;
    c.change(w);
    auto r = decode(w.bytes());
    ASSERT_FALSE(r) << c.what;
    EXPECT_EQ(r.error().code, make_error_code(c.code)) << c.what << ": " << r.error().message;
    EXPECT_NE(r.error().message.find(c.message_part), std::string::npos)
        << c.what << ": " << r.error().message;
  }
}

TEST(RecordTest, NonEnvelopeBytesAreRefused) {
  auto expect = [](const std::vector<std::byte>& b, errc code, const char* part) {
    auto r = decode(b);
    ASSERT_FALSE(r) << part;
    EXPECT_EQ(r.error().code, make_error_code(code)) << r.error().message;
    EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
  };
  expect({}, errc::malformed, "not msgpack");
  expect({std::byte{0xc1}}, errc::malformed, "not msgpack");
  expect({std::byte{0x05}}, errc::malformed, "not an array");
  expect({std::byte{0x90}}, errc::malformed, "not an array");
  auto trailing = encode(sample());
  trailing.push_back(std::byte{0});
  expect(trailing, errc::malformed, "trailing bytes");
  expect(std::vector<std::byte>(max_record_bytes + 1), errc::too_large, "limit");
  const auto good = encode(sample());
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(decode(std::span(good).first(n))) << "prefix " << n;
  }
}

TEST(RecordTest, HexHelpers) {
  const std::vector<std::uint8_t> raw{0x00, 0x7f, 0xff, 0x10};
  EXPECT_EQ(to_hex(raw), "007fff10");
  EXPECT_EQ(from_hex("007FfF10").value(), raw);
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_FALSE(from_hex("zz"));
  EXPECT_FALSE(public_key_from_hex("00"));
  public_key k{};
  k.fill(3);
  EXPECT_EQ(public_key_from_hex(to_hex(k)).value(), k);
}

TEST(RecordTest, VersionedTypes) {
  EXPECT_TRUE(is_versioned(record_type::grant));
  EXPECT_TRUE(is_versioned(record_type::progress));
  EXPECT_FALSE(is_versioned(record_type::intent));
  EXPECT_FALSE(is_versioned(record_type::host));
  EXPECT_EQ(to_string(record_type::exclude), "exclude");
}

TEST(RecordTest, HigherVersionSupersedes) {
  record a = sample();
  record b = sample();
  b.version = 2;
  EXPECT_TRUE(supersedes(b, a));
  EXPECT_FALSE(supersedes(a, b));
  EXPECT_FALSE(supersedes(a, a));
}

// Property: folding any arrival order with supersedes() keeps the same winner, and for two
// different records exactly one supersedes the other.
TEST(RecordTest, SupersedesPicksTheSameWinnerForAnyOrder) {
  std::mt19937 rng(20240611);
  for (int round = 0; round < 200; ++round) {
    std::vector<record> rs;
    const int n = 2 + static_cast<int>(rng() % 8);
    for (int i = 0; i < n; ++i) {
      record r = sample();
      r.version = 1 + rng() % 3;  // frequent ties
      r.payload.assign(1 + rng() % 4, std::byte{static_cast<std::uint8_t>(rng())});
      r.sig[0] = static_cast<std::uint8_t>(rng());
      rs.push_back(r);
    }
    for (const auto& a : rs) {
      for (const auto& b : rs) {
        if (a == b) {
          EXPECT_FALSE(supersedes(a, b));
        } else {
          EXPECT_NE(supersedes(a, b), supersedes(b, a));
        }
      }
    }
    auto fold = [](const std::vector<record>& order) {
      record winner = order.front();
      for (const auto& r : order) {
        if (supersedes(r, winner)) winner = r;
      }
      return winner;
    };
    const record expected = fold(rs);
    for (int perm = 0; perm < 10; ++perm) {
      std::shuffle(rs.begin(), rs.end(), rng);
      EXPECT_EQ(fold(rs), expected) << "round " << round;
    }
  }
}

}  // namespace
}  // namespace meshdeploy::records

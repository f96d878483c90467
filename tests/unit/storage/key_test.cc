#include "storage/key.h"

#include "storage/errc.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace meshdeploy::storage {
namespace {

using namespace std::string_literals;
using ::testing::HasSubstr;

int sign(int v) { return (v > 0) - (v < 0); }

std::string enc(std::string_view s) { return key().str(s).bytes(); }

// Strings that stress the escaping: zero bytes, 0x01 (the terminator's second
// byte), 0xFF (the escape's second byte), proper prefixes of each other.
const std::vector<std::string>& tricky_strings() {
  static const std::vector<std::string> strings = {
      ""s,
      "\x00"s,
      "\x00\x00"s,
      "\x00\x01"s,
      "\x00\xff"s,
      "\x01"s,
      "\x01\x00"s,
      "a"s,
      "a\x00"s,
      "a\x00\x00"s,
      "a\x00\x01"s,
      "a\x00"
      "b"s,
      "a\x01"s,
      "a\xff"s,
      "a\xff\x00"s,
      "ab"s,
      "b"s,
      "\xfe"s,
      "\xff"s,
      "\xff\x00"s,
      "\xff\xff"s,
  };
  return strings;
}

TEST(KeyTest, StringEncodingEscapesZeroAndEndsWithTerminator) {
  struct row {
    std::string in;
    std::string want;
  };
  const std::vector<row> rows = {
      {""s, "\x00\x01"s},
      {"abc"s, "abc\x00\x01"s},
      {"\x00"s, "\x00\xff\x00\x01"s},
      {"a\x00"
       "b"s,
       "a\x00\xff"
       "b\x00\x01"s},
      {"\xff\x01"s, "\xff\x01\x00\x01"s},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(enc(r.in), r.want) << "input of " << r.in.size() << " bytes";
  }
}

TEST(KeyTest, U64IsEightBytesBigEndian) {
  EXPECT_EQ(key().u64(0x0102030405060708).bytes(), "\x01\x02\x03\x04\x05\x06\x07\x08"s);
  EXPECT_EQ(key().u64(0).bytes(), std::string(8, '\0'));
  EXPECT_EQ(key().u64(UINT64_MAX).bytes(), std::string(8, '\xff'));
}

TEST(KeyTest, StringOrderMatchesEncodedByteOrder) {
  const auto& s = tricky_strings();
  for (const auto& a : s) {
    for (const auto& b : s) {
      EXPECT_EQ(sign(a.compare(b)), sign(enc(a).compare(enc(b))))
          << "a has " << a.size() << " bytes, b has " << b.size() << " bytes";
    }
  }
}

TEST(KeyTest, StringEncodingIsPrefixFree) {
  const auto& s = tricky_strings();
  for (const auto& a : s) {
    for (const auto& b : s) {
      if (a == b) continue;
      EXPECT_FALSE(enc(b).starts_with(enc(a)))
          << "encoding of a (" << a.size() << " bytes) prefixes that of b (" << b.size()
          << " bytes)";
    }
  }
}

TEST(KeyTest, U64OrderMatchesEncodedByteOrder) {
  const std::vector<std::uint64_t> values = {0,          1,
                                             255,        256,
                                             65535,      65536,
                                             1ull << 32, (1ull << 32) + 1,
                                             1ull << 63, UINT64_MAX - 1,
                                             UINT64_MAX};
  for (auto a : values) {
    for (auto b : values) {
      const int want = (a > b) - (a < b);
      EXPECT_EQ(want, sign(key().u64(a).bytes().compare(key().u64(b).bytes()))) << a << " vs " << b;
    }
  }
}

TEST(KeyTest, CompositeKeysOrderLikeTuples) {
  const auto& strings = tricky_strings();
  const std::vector<std::uint64_t> numbers = {0, 1, 256, UINT64_MAX};
  std::vector<std::tuple<std::string, std::uint64_t, std::string>> tuples;
  for (const auto& s : strings) {
    for (auto n : numbers) tuples.emplace_back(s, n, s.substr(0, 1));
  }
  for (const auto& a : tuples) {
    for (const auto& b : tuples) {
      const auto ka = key().str(std::get<0>(a)).u64(std::get<1>(a)).str(std::get<2>(a));
      const auto kb = key().str(std::get<0>(b)).u64(std::get<1>(b)).str(std::get<2>(b));
      const int want = (a > b) - (a < b);
      EXPECT_EQ(want, sign(ka.bytes().compare(kb.bytes())));
    }
  }
}

TEST(KeyTest, RandomStringsKeepOrderAndRoundTrip) {
  // Alphabet concentrated on the bytes the encoding treats specially.
  const std::string alphabet = "\x00\x01\x02\xfe\xff"s + "a";
  std::mt19937 rng(12345);
  auto random_string = [&] {
    std::string s(rng() % 6, '\0');
    for (auto& c : s) c = alphabet[rng() % alphabet.size()];
    return s;
  };
  for (int i = 0; i < 2000; ++i) {
    const std::string a = random_string();
    const std::string b = random_string();
    const std::uint64_t na = rng() % 3;
    const std::uint64_t nb = rng() % 3;
    const key ka = key().str(a).u64(na);
    const key kb = key().str(b).u64(nb);
    const int want = std::tie(a, na) < std::tie(b, nb) ? -1 : (std::tie(b, nb) < std::tie(a, na));
    ASSERT_EQ(want, sign(ka.bytes().compare(kb.bytes()))) << "iteration " << i;
    key_reader r(ka);
    auto s = r.str();
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s.value(), a);
    auto n = r.u64();
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(n.value(), na);
    EXPECT_TRUE(r.done());
  }
}

TEST(KeyTest, ScanPrefixOfOneStringDoesNotMatchLongerString) {
  // The reason for the terminator: group "web" must not see group "web2".
  const key web = key().str("web");
  EXPECT_TRUE(key().str("web").u64(1).bytes().starts_with(web.bytes()));
  EXPECT_FALSE(key().str("web2").u64(1).bytes().starts_with(web.bytes()));
  EXPECT_FALSE(key().str("web\x00"s).u64(1).bytes().starts_with(web.bytes()));
}

TEST(KeyReaderTest, RoundTripsMixedComponents) {
  const std::string s1 = "\x00\xff\x00\x01 mixed"s;
  const key k = key().str("app").u64(42).str(s1).str("").u64(UINT64_MAX);
  key_reader r(k);
  EXPECT_FALSE(r.done());
  EXPECT_EQ(r.str().value(), "app");
  EXPECT_EQ(r.u64().value(), 42u);
  EXPECT_EQ(r.str().value(), s1);
  EXPECT_EQ(r.str().value(), "");
  EXPECT_FALSE(r.done());
  EXPECT_EQ(r.u64().value(), UINT64_MAX);
  EXPECT_TRUE(r.done());
  EXPECT_EQ(r.rest(), "");
}

TEST(KeyReaderTest, ConvertsToStringViewOfBytes) {
  const key k = key().str("x").u64(1);
  const std::string_view v = k;
  EXPECT_EQ(v, k.bytes());
  EXPECT_EQ(v.size(), 3u + 8u);
}

TEST(KeyReaderTest, MalformedInputIsCorruptionNamingOffset) {
  struct row {
    const char* name;
    std::string bytes;
    bool read_str;  // else read u64
    std::string message_part;
  };
  const std::vector<row> rows = {
      {"empty string component", ""s, true, "no terminator"},
      {"unterminated string", "abc"s, true, "no terminator"},
      {"escape cut off", "ab\x00"s, true, "ends inside an escape at byte 2"},
      {"unknown escape", "a\x00\x02"s, true, "invalid escape 0x00 0x02 at byte 1"},
      {"escape of zero then end", "a\x00\xff"s, true, "no terminator"},
      {"u64 from empty", ""s, false, "needs 8 bytes, 0 left"},
      {"u64 from seven bytes", "\x01\x02\x03\x04\x05\x06\x07"s, false, "needs 8 bytes, 7 left"},
  };
  for (const auto& r : rows) {
    key_reader reader(r.bytes);
    const error e = r.read_str ? reader.str().error() : reader.u64().error();
    EXPECT_EQ(e.code, make_error_code(errc::corruption)) << r.name;
    EXPECT_THAT(e.message, HasSubstr(r.message_part)) << r.name;
    EXPECT_EQ(reader.rest(), r.bytes) << r.name << ": a failed read must not consume input";
  }
}

TEST(KeyReaderTest, FailedReadAfterGoodOneNamesItsOwnOffset) {
  const std::string bytes = key().str("ab").bytes() + "\x00\x07"s;
  key_reader r(bytes);
  ASSERT_EQ(r.str().value(), "ab");
  auto bad = r.str();
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("invalid escape 0x00 0x07 at byte 4"));
  // The valid part after a mismatch can still be read as what it is.
  EXPECT_FALSE(r.done());
  auto n = r.u64();
  ASSERT_FALSE(n);
  EXPECT_THAT(n.error().message, HasSubstr("u64 component at byte 4 needs 8 bytes, 2 left"));
}

TEST(KeyReaderTest, ArbitraryBytesGiveValuesOrCorruption) {
  // Schema mismatch or damage: any bytes must give a value or corruption,
  // never UB (run under MESHDEPLOY_SANITIZE to check the "never UB" part).
  std::mt19937 rng(7);
  int failures = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(rng() % 12, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng() % 4 == 0 ? 0 : rng() % 256);
    key_reader r(bytes);
    // Each successful read consumes at least two bytes, so 20 steps suffice.
    for (int step = 0; step < 20 && !r.done(); ++step) {
      const error* e = nullptr;
      auto s = r.str();
      auto n = s ? result<std::uint64_t>(0) : r.u64();
      if (!s && !n) e = &n.error();
      if (e != nullptr) {
        ASSERT_EQ(e->code, make_error_code(errc::corruption)) << e->message;
        ++failures;
        break;
      }
    }
  }
  EXPECT_GT(failures, 0);  // the generator does produce malformed input
}

}  // namespace
}  // namespace meshdeploy::storage

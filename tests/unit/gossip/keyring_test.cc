#include "gossip/keyring.h"

#include "gossip/errc.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace meshdeploy::gossip {
namespace {

// Two lowercase hex digits, as messages print key ids.
std::string fmt_id(key_id id) {
  static constexpr char digits[] = "0123456789abcdef";
  const auto v = static_cast<unsigned>(id);
  return {digits[v >> 4], digits[v & 15]};
}

// Generates keys until one's id differs from every id in `taken`.
secret_key key_avoiding(const std::set<key_id>& taken) {
  for (int i = 0; i < 10000; ++i) {
    secret_key k = secret_key::generate();
    if (!taken.contains(k.id())) return k;
  }
  ADD_FAILURE() << "no key with a free id after 10000 tries";
  return secret_key::generate();
}

// Generates a key different from `k` with the same id (about 256 tries).
secret_key key_colliding_with(const secret_key& k) {
  for (int i = 0; i < 100000; ++i) {
    secret_key other = secret_key::generate();
    if (other.id() == k.id() && !(other == k)) return other;
  }
  ADD_FAILURE() << "no colliding key after 100000 tries";
  return secret_key::generate();
}

TEST(SecretKeyTest, Base64RoundTripsAndIsFortyFourCharacters) {
  const secret_key k = secret_key::generate();
  const std::string text = k.to_base64();
  EXPECT_EQ(text.size(), 44u);
  auto back = secret_key::from_base64(text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(back.value() == k);
  EXPECT_EQ(back.value().id(), k.id());
}

TEST(SecretKeyTest, Base64IgnoresSurroundingWhitespace) {
  const secret_key k = secret_key::generate();
  auto back = secret_key::from_base64("  " + k.to_base64() + "\r\n");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(back.value() == k);
}

TEST(SecretKeyTest, KnownKeyHasStableText) {
  // 32 bytes 0x00..0x1f.
  std::vector<std::byte> raw;
  for (int i = 0; i < 32; ++i) raw.push_back(std::byte(i));
  auto k = secret_key::from_bytes(raw);
  ASSERT_TRUE(k);
  EXPECT_EQ(k.value().to_base64(), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  // First byte of BLAKE2b-256(key = k, "meshdeploy.gossip.key-id.v1"), computed independently
  // with Python's hashlib.blake2b.
  EXPECT_EQ(k.value().id(), key_id{0x68});
}

TEST(SecretKeyTest, RejectsBadBase64WithoutEchoingIt) {
  const std::vector<std::string> bad = {
      "",
      "not-base64!",
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",       // unpadded
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",      // 31 bytes
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==",  // 34 bytes
      "AAECAwQFBgcICQoLDA0ODxAREhMU FRYXGBkaGxwdHh8=",     // space inside
  };
  for (const std::string& text : bad) {
    auto k = secret_key::from_base64(text);
    ASSERT_FALSE(k) << text;
    EXPECT_EQ(k.error().code, make_error_code(errc::invalid_key)) << text;
    if (text.size() > 10) {
      EXPECT_EQ(k.error().message.find(text), std::string::npos);
    }
  }
}

TEST(SecretKeyTest, FromBytesRejectsWrongLength) {
  std::vector<std::byte> raw(31);
  auto k = secret_key::from_bytes(raw);
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().code, make_error_code(errc::invalid_key));
}

TEST(SecretKeyTest, KeyIdsSpreadOverManyValues) {
  std::set<key_id> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(secret_key::generate().id());
  // 1000 draws from 256 values miss any given value with probability ~2%.
  EXPECT_GT(ids.size(), 240u);
}

TEST(SecretKeyTest, KeygenGivesDistinctParsableKeys) {
  const std::string a = keygen();
  const std::string b = keygen();
  EXPECT_NE(a, b);
  EXPECT_TRUE(secret_key::from_base64(a));
  EXPECT_TRUE(secret_key::from_base64(b));
}

TEST(KeyringTest, StartsWithThePrimaryOnly) {
  const secret_key k = secret_key::generate();
  keyring ring(k);
  ASSERT_EQ(ring.size(), 1u);
  EXPECT_TRUE(ring.primary() == k);
  ASSERT_NE(ring.find(k.id()), nullptr);
  EXPECT_TRUE(*ring.find(k.id()) == k);
}

TEST(KeyringTest, InstallUseRemoveRotatesThePrimary) {
  const secret_key old_key = secret_key::generate();
  const secret_key new_key = key_avoiding({old_key.id()});
  keyring ring(old_key);
  ASSERT_TRUE(ring.install(new_key));
  ASSERT_EQ(ring.size(), 2u);
  EXPECT_TRUE(ring.primary() == old_key);

  ASSERT_TRUE(ring.use(new_key));
  EXPECT_TRUE(ring.primary() == new_key);
  EXPECT_TRUE(ring.list()[1] == old_key);

  ASSERT_TRUE(ring.remove(old_key));
  ASSERT_EQ(ring.size(), 1u);
  EXPECT_EQ(ring.find(old_key.id()), nullptr);
}

TEST(KeyringTest, InstallingTheSameKeyTwiceIsANoOp) {
  const secret_key k = secret_key::generate();
  keyring ring(k);
  EXPECT_TRUE(ring.install(k));
  EXPECT_EQ(ring.size(), 1u);
}

TEST(KeyringTest, RefusesAKeyWhoseIdCollides) {
  const secret_key k = secret_key::generate();
  const secret_key twin = key_colliding_with(k);
  keyring ring(k);
  auto r = ring.install(twin);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::key_id_collision));
  EXPECT_NE(r.error().message.find(fmt_id(k.id())), std::string::npos) << r.error().message;
  EXPECT_EQ(ring.size(), 1u);
}

TEST(KeyringTest, RefusesRemovingThePrimary) {
  const secret_key k = secret_key::generate();
  keyring ring(k);
  auto r = ring.remove(k);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::primary_key));
  EXPECT_EQ(ring.size(), 1u);
}

TEST(KeyringTest, UseAndRemoveOfUnknownKeyFail) {
  const secret_key k = secret_key::generate();
  const secret_key stranger = key_avoiding({k.id()});
  keyring ring(k);
  EXPECT_EQ(ring.use(stranger).error().code, make_error_code(errc::key_not_found));
  EXPECT_EQ(ring.use(stranger.id()).error().code, make_error_code(errc::key_not_found));
  EXPECT_EQ(ring.remove(stranger).error().code, make_error_code(errc::key_not_found));
  // A different key that merely shares the id is not "installed" either.
  const secret_key twin = key_colliding_with(k);
  EXPECT_EQ(ring.use(twin).error().code, make_error_code(errc::key_not_found));
  EXPECT_EQ(ring.remove(twin).error().code, make_error_code(errc::key_not_found));
  EXPECT_TRUE(ring.primary() == k);
}

TEST(KeyringTest, UseByIdSelectsThatKey) {
  const secret_key a = secret_key::generate();
  const secret_key b = key_avoiding({a.id()});
  keyring ring(a);
  ASSERT_TRUE(ring.install(b));
  ASSERT_TRUE(ring.use(b.id()));
  EXPECT_TRUE(ring.primary() == b);
}

TEST(KeyringTest, HoldsAtMostMaxKeys) {
  std::set<key_id> ids;
  keyring ring(secret_key::generate());
  ids.insert(ring.primary().id());
  while (ring.size() < max_keys) {
    const secret_key k = key_avoiding(ids);
    ASSERT_TRUE(ring.install(k));
    ids.insert(k.id());
  }
  auto r = ring.install(key_avoiding(ids));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::keyring_full));
  EXPECT_EQ(ring.size(), max_keys);
}

TEST(KeyringFileTest, FormatThenParseKeepsKeysAndOrder) {
  const secret_key a = secret_key::generate();
  const secret_key b = key_avoiding({a.id()});
  const secret_key c = key_avoiding({a.id(), b.id()});
  keyring ring(a);
  ASSERT_TRUE(ring.install(b));
  ASSERT_TRUE(ring.install(c));
  ASSERT_TRUE(ring.use(c));

  auto back = parse_keyring(format_keyring(ring), "keyring");
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back.value().size(), 3u);
  EXPECT_TRUE(back.value().primary() == c);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(back.value().list()[i] == ring.list()[i]);
}

TEST(KeyringFileTest, IgnoresCommentsBlankLinesAndCrLf) {
  const secret_key a = secret_key::generate();
  const secret_key b = key_avoiding({a.id()});
  const std::string text =
      "# comment\r\n\r\n  " + a.to_base64() + "  \r\n# another\n\n" + b.to_base64();
  auto ring = parse_keyring(text, "k");
  ASSERT_TRUE(ring) << ring.error().message;
  ASSERT_EQ(ring.value().size(), 2u);
  EXPECT_TRUE(ring.value().primary() == a);
}

struct bad_file {
  std::string name;
  std::string text;
  std::string want;  // expected message prefix
};

TEST(KeyringFileTest, ParseErrorsNameFileAndLine) {
  const secret_key a = secret_key::generate();
  const secret_key twin = key_colliding_with(a);
  const std::string ka = a.to_base64();
  const std::vector<bad_file> cases = {
      {"empty", "", "ring.txt: no key"},
      {"comments only", "# nothing\n\n", "ring.txt: no key"},
      {"bad base64", "# c\n" + ka + "\n!!!\n", "ring.txt:3: key: not standard padded base64"},
      {"short key", "AAAA\n", "ring.txt:1: key: decodes to 3 bytes"},
      {"duplicate", ka + "\n\n" + ka + "\n", "ring.txt:3: duplicates the key on line 1"},
      {"collision", ka + "\n" + twin.to_base64() + "\n",
       "ring.txt:2: key id 0x" + fmt_id(a.id()) + " collides with the key on line 1"},
  };
  for (const bad_file& c : cases) {
    auto r = parse_keyring(c.text, "ring.txt");
    ASSERT_FALSE(r) << c.name;
    EXPECT_EQ(r.error().code, make_error_code(errc::keyring_invalid)) << c.name;
    EXPECT_EQ(r.error().message.rfind(c.want, 0), 0u) << c.name << ": " << r.error().message;
  }
}

TEST(KeyringFileTest, RejectsMoreThanMaxKeysNamingTheLine) {
  std::set<key_id> ids;
  std::string text;
  for (std::size_t i = 0; i <= max_keys; ++i) {
    const secret_key k = key_avoiding(ids);
    ids.insert(k.id());
    text += k.to_base64() + "\n";
  }
  auto r = parse_keyring(text, "ring.txt");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "ring.txt:17: more than 16 keys");
}

TEST(GossipErrcTest, CodesHaveTheGossipCategoryAndMessages) {
  const auto ec = make_error_code(errc::auth_failed);
  EXPECT_STREQ(ec.category().name(), "meshdeploy.gossip");
  EXPECT_EQ(ec.value(), 6);
  EXPECT_EQ(ec.message(), "gossip authentication failed");
  EXPECT_EQ(make_error_code(errc::replayed).value(), 7);
}

}  // namespace
}  // namespace meshdeploy::gossip

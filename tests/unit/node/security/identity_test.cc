#include "node/security/identity.h"

#include "node/records/errc.h"
#include "node/records/payloads.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <string>
#include <sys/stat.h>

namespace meshdeploy::security {
namespace {

using records::errc;

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

records::record sample_record() {
  records::record r;
  r.type = records::record_type::application;
  r.key = "web";
  r.version = 3;
  r.time_ms = 1'700'000'000'000;
  r.via = "node-1";
  r.payload = records::encode_payload(records::application_payload{"web", false});
  return r;
}

TEST(IdentityTest, GeneratedKeysDiffer) {
  const identity a = generate_identity("a");
  const identity b = generate_identity("b");
  EXPECT_EQ(a.name, "a");
  EXPECT_NE(a.pub, b.pub);
  EXPECT_NE(a.secret, b.secret);
}

TEST(IdentityTest, SaveLoadRoundTripsWithMode0600) {
  test::temp_dir dir;
  const identity id = generate_identity("alice");
  ASSERT_TRUE(save_identity(id, dir / "alice.key"));
  EXPECT_EQ(mode_of(dir / "alice.key"), 0600u);
  auto back = load_identity(dir / "alice.key");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back.value().name, "alice");
  EXPECT_EQ(back.value().pub, id.pub);
  EXPECT_EQ(back.value().secret, id.secret);
}

TEST(IdentityTest, SaveRefusesToOverwrite) {
  test::temp_dir dir;
  test::write_file(dir / "x.key", "keep me", 0600);
  auto r = save_identity(generate_identity("x"), dir / "x.key");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::exists));
  EXPECT_NE(r.error().message.find("x.key"), std::string::npos);
  EXPECT_EQ(test::read_file(dir / "x.key"), "keep me");
}

TEST(IdentityTest, LoadRefusesGroupReadableSecret) {
  test::temp_dir dir;
  ASSERT_TRUE(save_identity(generate_identity("a"), dir / "a.key"));
  ASSERT_EQ(::chmod((dir / "a.key").c_str(), 0640), 0);
  auto r = load_identity(dir / "a.key");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::permission_denied));
  EXPECT_NE(r.error().message.find("chmod 600"), std::string::npos) << r.error().message;
}

TEST(IdentityTest, LoadErrorsNameFileAndProblem) {
  test::temp_dir dir;
  const identity id = generate_identity("a");
  const std::string pub = records::to_hex(id.pub);
  const std::string sec = records::to_hex(id.secret);
  const identity other = generate_identity("b");
  struct bad {
    const char* text;
    std::string expect;
    errc code;
  };
  const std::vector<bad> cases = {
      {"not json", "not valid JSON", errc::malformed},
      {"[1]", "not a JSON object", errc::malformed},
      {R"({"public":"00"})", "missing field \"name\"", errc::malformed},
      {R"({"name":1})", "field \"name\" is not a string", errc::malformed},
      {R"({"name":"a","public":"zz"})", "field \"public\"", errc::malformed},
  };
  int n = 0;
  for (const auto& c : cases) {
    const auto file = dir / ("bad" + std::to_string(n++) + ".key");
    test::write_file(file, c.text, 0600);
    auto r = load_identity(file);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code, make_error_code(c.code)) << r.error().message;
    EXPECT_NE(r.error().message.find(file.string()), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
  }
  const auto short_secret = dir / "short.key";
  test::write_file(short_secret,
                   R"({"name":"a","public":")" + pub + R"(","secret":")" + sec.substr(2) + "\"}",
                   0600);
  auto r1 = load_identity(short_secret);
  ASSERT_FALSE(r1);
  EXPECT_NE(r1.error().message.find("field \"secret\" is 63 bytes"), std::string::npos)
      << r1.error().message;

  const auto mismatched = dir / "mismatch.key";
  test::write_file(
      mismatched,
      R"({"name":"a","public":")" + records::to_hex(other.pub) + R"(","secret":")" + sec + "\"}",
      0600);
  auto r2 = load_identity(mismatched);
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().message.find("does not belong"), std::string::npos) << r2.error().message;

  auto r3 = load_identity(dir / "absent.key");
  ASSERT_FALSE(r3);
  EXPECT_EQ(r3.error().code, make_error_code(errc::not_found));
}

TEST(IdentityTest, PublicKeyFileJsonAndBareHex) {
  test::temp_dir dir;
  const identity id = generate_identity("alice");
  ASSERT_TRUE(save_public_key("alice", id.pub, dir / "alice.pub"));
  EXPECT_EQ(mode_of(dir / "alice.pub"), 0644u);
  auto json = load_public_key(dir / "alice.pub");
  ASSERT_TRUE(json) << json.error().message;
  EXPECT_EQ(json.value().first, "alice");
  EXPECT_EQ(json.value().second, id.pub);

  test::write_file(dir / "bare.pub", "  " + records::to_hex(id.pub) + "\n");
  auto bare = load_public_key(dir / "bare.pub");
  ASSERT_TRUE(bare) << bare.error().message;
  EXPECT_EQ(bare.value().first, "");
  EXPECT_EQ(bare.value().second, id.pub);

  test::write_file(dir / "bad.pub", "abcd\n");
  auto bad = load_public_key(dir / "bad.pub");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("bad.pub"), std::string::npos);

  auto again = save_public_key("alice", id.pub, dir / "alice.pub");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, make_error_code(errc::exists));
}

TEST(IdentityTest, NodeIdentityIsCreatedOnceThenLoaded) {
  test::temp_dir dir;
  const auto data = dir / "data" / "nested";
  auto first = load_or_create_node_identity(data, "node-1");
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(mode_of(data / "node.key"), 0600u);
  EXPECT_EQ(mode_of(data), 0700u);
  auto second = load_or_create_node_identity(data, "node-1");
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second.value().pub, first.value().pub);
  auto renamed = load_or_create_node_identity(data, "node-2");
  ASSERT_FALSE(renamed);
  EXPECT_EQ(renamed.error().code, make_error_code(errc::conflict));
}

TEST(IdentityTest, SignedRecordVerifies) {
  const identity id = generate_identity("alice");
  records::record r = sample_record();
  sign(r, id);
  EXPECT_EQ(r.writer, id.pub);
  EXPECT_TRUE(signature_valid(r));
  // Survives the wire.
  auto back = records::decode(records::encode(r));
  ASSERT_TRUE(back);
  EXPECT_TRUE(signature_valid(back.value()));
}

TEST(IdentityTest, FlippingAnyEncodedByteBreaksTheRecord) {
  const identity id = generate_identity("alice");
  records::record r = sample_record();
  sign(r, id);
  const auto bytes = records::encode(r);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (std::uint8_t bit : {0x01, 0x80}) {
      auto copy = bytes;
      copy[i] ^= std::byte{bit};
      auto d = records::decode(copy);
      // Either it no longer decodes, or it decodes to a record whose signature fails.
      if (d) {
        EXPECT_FALSE(signature_valid(d.value())) << "byte " << i << " bit " << int(bit);
      }
    }
  }
}

TEST(IdentityTest, ChangingAnyFieldBreaksTheSignature) {
  const identity id = generate_identity("alice");
  records::record r = sample_record();
  sign(r, id);
  auto check = [&](auto mutate) {
    records::record c = r;
    mutate(c);
    EXPECT_FALSE(signature_valid(c));
  };
  check([](records::record& c) { c.type = records::record_type::config; });
  check([](records::record& c) { c.key = "web2"; });
  check([](records::record& c) { c.version = 4; });
  check([](records::record& c) { c.time_ms += 1; });
  check([](records::record& c) { c.via = "node-2"; });
  check([](records::record& c) { c.payload.push_back(std::byte{0}); });
  check([&](records::record& c) { c.writer = generate_identity("m").pub; });
  check([](records::record& c) { c.sig[10] ^= std::uint8_t{1}; });
}

}  // namespace
}  // namespace meshdeploy::security

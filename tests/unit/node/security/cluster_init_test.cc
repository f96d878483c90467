#include "node/security/cluster_init.h"

#include "gossip/keyring.h"
#include "node/records/errc.h"
#include "node/records/payloads.h"
#include "node/security/verifier.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <map>
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

class grant_trust final : public records::trust_source {
 public:
  std::vector<records::record> grant_history(const records::public_key& op) const override {
    auto it = grants.find(op);
    return it == grants.end() ? std::vector<records::record>{} : it->second;
  }
  std::optional<records::public_key> host_key(std::string_view) const override {
    return std::nullopt;
  }
  std::map<records::public_key, std::vector<records::record>> grants;
};

TEST(ClusterInitTest, WritesUsableKeysAndGrant) {
  test::temp_dir tmp;
  const auto dir = tmp / "cluster";
  auto files = init_cluster(dir, "alice");
  ASSERT_TRUE(files) << files.error().message;
  const cluster_files& f = files.value();
  EXPECT_EQ(mode_of(dir), 0700u);
  for (const auto& p :
       {f.keyring, f.admin_key, f.admin_pub, f.operator_key, f.operator_pub, f.grant}) {
    EXPECT_EQ(p.parent_path(), dir);
    EXPECT_EQ(mode_of(p), 0600u) << p;
  }
  EXPECT_EQ(f.operator_key.filename(), "alice.key");
  EXPECT_EQ(f.grant.filename(), "alice.grant");

  // The keyring parses.
  auto ring = gossip::parse_keyring(test::read_file(f.keyring), f.keyring.string());
  ASSERT_TRUE(ring) << ring.error().message;
  EXPECT_EQ(ring.value().size(), 1u);

  // Keys load; public files match the secret files.
  auto admin = load_identity(f.admin_key);
  ASSERT_TRUE(admin) << admin.error().message;
  EXPECT_EQ(admin.value().name, "admin");
  auto admin_pub = load_public_key(f.admin_pub);
  ASSERT_TRUE(admin_pub);
  EXPECT_EQ(admin_pub.value().second, admin.value().pub);
  auto op = load_identity(f.operator_key);
  ASSERT_TRUE(op);
  EXPECT_EQ(op.value().name, "alice");
  auto op_pub = load_public_key(f.operator_pub);
  ASSERT_TRUE(op_pub);
  EXPECT_EQ(op_pub.value().second, op.value().pub);

  // The grant decodes, verifies under the admin key and lets alice deploy anything.
  const std::string grant_text = test::read_file(f.grant);
  const std::vector<std::byte> bytes(
      reinterpret_cast<const std::byte*>(grant_text.data()),
      reinterpret_cast<const std::byte*>(grant_text.data()) + grant_text.size());
  auto grant = records::decode(bytes);
  ASSERT_TRUE(grant) << grant.error().message;
  EXPECT_EQ(grant.value().version, 1u);
  grant_trust trust;
  auto verified = verify(grant.value(), trust, admin.value().pub);
  ASSERT_TRUE(verified) << verified.error().message;
  const auto& g = std::get<records::grant_payload>(verified.value());
  EXPECT_EQ(g.operator_key, op.value().pub);
  EXPECT_EQ(g.allow, std::vector<std::string>{"*:*"});
  EXPECT_FALSE(g.revoked);

  trust.grants[op.value().pub].push_back(grant.value());
  records::record intent;
  intent.type = records::record_type::intent;
  intent.key = "d-1";
  intent.time_ms = grant.value().time_ms + 1000;
  intent.payload = records::encode_payload(records::intent_payload{
      "d-1", "web", "prod", "rev", "OneAtATime", {"h1"}, 1, 0, "", false, "", "alice"});
  sign(intent, op.value());
  auto accepted = verify(intent, trust, admin.value().pub);
  EXPECT_TRUE(accepted) << accepted.error().message;
}

TEST(ClusterInitTest, RefusesWhenAnyFileExistsAndWritesNothing) {
  test::temp_dir tmp;
  const cluster_files paths = cluster_file_paths(tmp.path(), "alice");
  for (const auto& existing : {paths.keyring, paths.admin_pub, paths.grant}) {
    test::write_file(existing, "old", 0600);
    auto r = init_cluster(tmp.path(), "alice");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, make_error_code(errc::exists));
    EXPECT_NE(r.error().message.find(existing.string()), std::string::npos) << r.error().message;
    std::size_t entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
      (void)e;
      ++entries;
    }
    EXPECT_EQ(entries, 1u) << "only the pre-existing file";
    EXPECT_EQ(test::read_file(existing), "old");
    std::filesystem::remove(existing);
  }
  // A second init over a complete cluster directory is refused too.
  ASSERT_TRUE(init_cluster(tmp.path(), "alice"));
  const std::string admin_before = test::read_file(paths.admin_key);
  auto again = init_cluster(tmp.path(), "alice");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, make_error_code(errc::exists));
  EXPECT_EQ(test::read_file(paths.admin_key), admin_before);
}

TEST(ClusterInitTest, RejectsBadOperatorNames) {
  test::temp_dir tmp;
  for (const char* name : {"", "admin", "../x", "a/b", ".hidden", "sp ace"}) {
    auto r = init_cluster(tmp / "c", name);
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().code, make_error_code(errc::schema)) << name;
  }
  EXPECT_FALSE(std::filesystem::exists(tmp / "c"));
}

TEST(ClusterInitTest, MakeGrantValidatesAndSigns) {
  const identity admin = generate_identity("admin");
  const identity op = generate_identity("bob");
  auto g = make_grant(admin, "bob", op.pub, {"deploy:app/web/*"}, false, 4, 1234);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g.value().key, records::to_hex(op.pub));
  EXPECT_EQ(g.value().version, 4u);
  EXPECT_EQ(g.value().time_ms, 1234);
  EXPECT_EQ(g.value().writer, admin.pub);
  EXPECT_TRUE(signature_valid(g.value()));

  auto bad_pattern = make_grant(admin, "bob", op.pub, {"deploy:web"}, false, 1, 0);
  ASSERT_FALSE(bad_pattern);
  EXPECT_EQ(bad_pattern.error().code, make_error_code(errc::schema));
  EXPECT_FALSE(make_grant(admin, "bob", op.pub, {"*:*"}, false, 0, 0));
  EXPECT_FALSE(make_grant(admin, "", op.pub, {"*:*"}, false, 1, 0));
  std::vector<std::string> many(257, "*:*");
  auto too_many = make_grant(admin, "bob", op.pub, many, false, 1, 0);
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().code, make_error_code(errc::too_large));
}

}  // namespace
}  // namespace meshdeploy::security

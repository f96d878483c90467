// The registry's deployment documents in a real RocksDB: documents put deferred are read at
// once from memory, written by the flush, and replaced by a later direct put. Group
// definitions: an update is one record replacing the previous definition, and every node ends
// with the same one whatever order the versions reach it in.
#include "node/deploy/registry.h"

#include "node/agent/revision.h"
#include "node/deploy/errc.h"
#include "node/swarm/manifest.h"
#include "storage/db.h"
#include "tests/support/signed_records.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace meshdeploy::deploy {
namespace {

class RegistryTest : public ::testing::Test {
 protected:
  RegistryTest() { open(); }

  void open() {
    reg_.reset();
    store_.reset();
    db_.reset();
    auto families = registry::column_families();
    for (auto& f : records::store::column_families()) families.push_back(f);
    db_ = storage::db::open({dir_ / "db", families}).value();
    store_ = records::store::open(*db_).value();
    reg_ = std::make_unique<registry>(*db_, *store_, dir_ / "revisions");
  }

  static deployment_record doc(const std::string& id, const std::string& group, unix_ms created,
                               std::uint64_t version) {
    deployment_record d;
    d.id = id;
    d.application = "web";
    d.group = group;
    d.group_id = "g-" + group;
    d.status = deployment_status::in_progress;
    d.create_time = created;
    d.version = version;
    d.hosts.push_back(host_progress{"h1", host_status::in_progress, {}});
    return d;
  }

  test::temp_dir dir_{"meshdeploy-registry"};
  std::unique_ptr<storage::db> db_;
  std::unique_ptr<records::store> store_;
  std::unique_ptr<registry> reg_;
};

TEST_F(RegistryTest, DeferredDocumentsAreReadAtOnceAndStoredByTheFlush) {
  ASSERT_TRUE(reg_->put_deployment(doc("d-1", "prod", 1000, 1)));
  reg_->put_deployment_deferred(doc("d-1", "prod", 1000, 2));  // newer than the stored one
  reg_->put_deployment_deferred(doc("d-2", "test", 2000, 1));  // not stored at all yet

  auto one = reg_->get_deployment("d-1");
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one.value().version, 2u);
  ASSERT_TRUE(reg_->get_deployment("d-2"));
  auto all = reg_->list_deployments("", "");
  ASSERT_TRUE(all);
  ASSERT_EQ(all.value().size(), 2u);    // d-1 once, in its deferred version
  EXPECT_EQ(all.value()[0].id, "d-2");  // newest first
  EXPECT_EQ(all.value()[1].version, 2u);
  auto prod = reg_->list_deployments("web", "prod");
  ASSERT_TRUE(prod);
  ASSERT_EQ(prod.value().size(), 1u);
  EXPECT_EQ(prod.value()[0].id, "d-1");

  // Without a flush a restart loses the deferred versions (they are recomputable) ...
  open();
  EXPECT_EQ(reg_->get_deployment("d-1").value().version, 1u);
  EXPECT_FALSE(reg_->get_deployment("d-2"));

  // ... with one it keeps them.
  reg_->put_deployment_deferred(doc("d-1", "prod", 1000, 3));
  ASSERT_TRUE(reg_->flush_deferred_deployments());
  open();
  EXPECT_EQ(reg_->get_deployment("d-1").value().version, 3u);
}

TEST_F(RegistryTest, ADirectPutReplacesADeferredDocument) {
  reg_->put_deployment_deferred(doc("d-1", "prod", 1000, 5));
  ASSERT_TRUE(reg_->put_deployment(doc("d-1", "prod", 1000, 6)));
  EXPECT_EQ(reg_->get_deployment("d-1").value().version, 6u);
  // The flush does not write the older deferred version over it.
  ASSERT_TRUE(reg_->flush_deferred_deployments());
  open();
  EXPECT_EQ(reg_->get_deployment("d-1").value().version, 6u);
}

// One node's view: its own RocksDB, record store and registry.
struct node_view {
  explicit node_view(const std::filesystem::path& dir) {
    auto families = registry::column_families();
    for (auto& f : records::store::column_families()) families.push_back(f);
    db = storage::db::open({dir, families}).value();
    store = records::store::open(*db).value();
    reg = std::make_unique<registry>(*db, *store, dir / "revisions");
  }
  records::put_outcome put(const records::record& r) { return store->put(r).value(); }
  std::string config_of_prod() const {
    auto g = reg->get_group("web", "prod");
    return g ? g.value().config : "(" + g.error().message + ")";
  }
  std::unique_ptr<storage::db> db;
  std::unique_ptr<records::store> store;
  std::unique_ptr<registry> reg;
};

class RegistryGroupTest : public ::testing::Test {
 protected:
  using change = registry::definition_change;

  RegistryGroupTest() { a_.put(signers_.sign(records::application_payload{"web", false})); }

  static records::group_payload prod(const std::string& config, bool deleted = false) {
    records::group_payload g;
    g.app = "web";
    g.name = "prod";
    g.selector = {{{"role", "web"}}};
    g.config = config;
    g.deleted = deleted;
    return g;
  }

  static boost::system::error_code code_of(const result<void>& r) {
    return r ? boost::system::error_code() : r.error().code;
  }

  test::temp_dir dir_{"meshdeploy-registry-groups"};
  test::test_signers signers_;
  node_view a_{dir_ / "a"};
};

TEST_F(RegistryGroupTest, AReplaceNeedsALiveGroupAndPassesTheCreateChecks) {
  const registry& reg = *a_.reg;
  EXPECT_EQ(code_of(reg.check_definition(prod("AllAtOnce"), change::replace)), errc::not_found);
  ASSERT_TRUE(reg.check_definition(prod("OneAtATime")));
  ASSERT_EQ(a_.put(signers_.sign(prod("OneAtATime"), 1)), records::put_outcome::stored);

  EXPECT_EQ(code_of(reg.check_definition(prod("AllAtOnce"))), errc::already_exists);
  EXPECT_TRUE(reg.check_definition(prod("AllAtOnce"), change::replace));
  // A replace is never a delete, nor of another type; it passes the create checks.
  EXPECT_EQ(code_of(reg.check_definition(prod("AllAtOnce", true), change::replace)),
            errc::invalid_argument);
  EXPECT_EQ(
      code_of(reg.check_definition(records::application_payload{"web", false}, change::replace)),
      errc::invalid_argument);
  EXPECT_EQ(code_of(reg.check_definition(prod("NoSuchConfig"), change::replace)), errc::not_found);
  auto no_tags = prod("AllAtOnce");
  no_tags.selector = {{}};
  EXPECT_EQ(code_of(reg.check_definition(no_tags, change::replace)), errc::invalid_argument);
  auto other_app = prod("AllAtOnce");
  other_app.app = "api";
  EXPECT_EQ(code_of(reg.check_definition(other_app, change::replace)), errc::not_found);

  // The replacement is one record, the next version: the group is never absent.
  ASSERT_EQ(a_.put(signers_.sign(prod("AllAtOnce"), 2)), records::put_outcome::replaced);
  EXPECT_EQ(a_.config_of_prod(), "AllAtOnce");
}

TEST_F(RegistryGroupTest, ConcurrentUpdatesConvergeOnEveryNode) {
  // Two operators update through two nodes at once: both sign stored version + 1.
  const auto other = security::generate_identity("other");
  const auto create = signers_.sign(prod("OneAtATime"), 1);
  const auto half = signers_.sign(prod("HalfAtATime"), 2, nullptr, test::wall_ms());
  const auto all = signers_.sign(prod("AllAtOnce"), 2, &other, test::wall_ms() + 1);
  const std::string winner = records::supersedes(half, all) ? "HalfAtATime" : "AllAtOnce";

  node_view b{dir_ / "b"};
  b.put(signers_.sign(records::application_payload{"web", false}));
  a_.put(create);
  b.put(create);
  a_.put(half);  // node A learns of HalfAtATime first ...
  a_.put(all);
  b.put(all);  // ... node B of AllAtOnce
  b.put(half);
  EXPECT_EQ(a_.config_of_prod(), winner);
  EXPECT_EQ(b.config_of_prod(), winner);
  // Replays change nothing.
  EXPECT_EQ(a_.put(half), records::put_outcome::stale);
  EXPECT_EQ(a_.put(all), records::put_outcome::stale);
  EXPECT_EQ(a_.config_of_prod(), winner);
}

TEST_F(RegistryGroupTest, AnOlderUpdateArrivingLateIsIgnored) {
  a_.put(signers_.sign(prod("OneAtATime"), 1));
  ASSERT_EQ(a_.put(signers_.sign(prod("AllAtOnce"), 3)), records::put_outcome::replaced);
  EXPECT_EQ(a_.put(signers_.sign(prod("HalfAtATime"), 2)), records::put_outcome::stale);
  EXPECT_EQ(a_.config_of_prod(), "AllAtOnce");
}

TEST_F(RegistryGroupTest, ADeleteAfterAnUpdateDeletesAndTheGroupCanBeCreatedAgain) {
  a_.put(signers_.sign(prod("OneAtATime"), 1));
  a_.put(signers_.sign(prod("AllAtOnce"), 2));
  ASSERT_TRUE(a_.reg->check_definition(prod("AllAtOnce", true)));
  ASSERT_EQ(a_.put(signers_.sign(prod("AllAtOnce", true), 3)), records::put_outcome::replaced);
  auto gone = a_.reg->get_group("web", "prod");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, errc::not_found);
  EXPECT_TRUE(a_.reg->list_groups("web").value().empty());
  EXPECT_EQ(code_of(a_.reg->check_definition(prod("HalfAtATime"), change::replace)),
            errc::not_found);
  // An update signed before the delete (version 2) arriving after it does not revive the group.
  EXPECT_EQ(a_.put(signers_.sign(prod("HalfAtATime"), 2)), records::put_outcome::stale);
  EXPECT_FALSE(a_.reg->get_group("web", "prod"));
  EXPECT_TRUE(a_.reg->check_definition(prod("HalfAtATime")));
}

// store_bundle and the swarm (docs/swarm.md "Manifest and verification"): a download verified
// piece by piece skips the whole-file hash only when the record names a manifest; without one
// the revision id is the only link to the bytes and is still checked.
class StoreBundleTest : public RegistryTest {
 protected:
  // A small tar and a revision record describing it (id = its hash).
  records::revision_payload make_bundle(const std::string& name) {
    const auto src = dir_ / ("src-" + name);
    std::filesystem::create_directories(src);
    std::ofstream(src / "appspec.yml") << "version: 0.0\nos: linux\n# " << name << "\n";
    const auto tar = dir_ / (name + ".tar");
    const std::string cmd = "tar -cf '" + tar.string() + "' -C '" + src.string() + "' appspec.yml";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    records::revision_payload rev;
    rev.app = "web";
    rev.id = agent::hash_file(tar).value();
    rev.format = "tar";
    rev.size = std::filesystem::file_size(tar);
    return rev;
  }
  std::filesystem::path copy_of(const std::string& name) {
    const auto to = dir_ / (name + ".download");
    std::filesystem::copy_file(dir_ / (name + ".tar"), to,
                               std::filesystem::copy_options::overwrite_existing);
    return to;
  }
};

TEST_F(StoreBundleTest, WithoutAManifestTheWholeHashIsCheckedEvenForVerifiedPieces) {
  auto rev = make_bundle("a");
  const auto other = make_bundle("b");  // same size and format, other bytes
  ASSERT_EQ(rev.size, other.size);
  rev.id = other.id;  // the record names other bytes
  auto r = reg_->store_bundle(rev, copy_of("a"), /*pieces_verified=*/true);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("does not match its signed revision record"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(reg_->has_bundle(revision_from_payload(rev, 0)));
}

TEST_F(StoreBundleTest, WithAManifestVerifiedPiecesSkipTheWholeHashOtherwiseItIsChecked) {
  auto rev = make_bundle("a");
  rev.manifest = std::string(64, 'e');  // the swarm checked the pieces against it
  // Unverified (an upload): the bytes must hash to the id.
  auto wrong = rev;
  wrong.id = make_bundle("b").id;
  EXPECT_FALSE(reg_->store_bundle(wrong, copy_of("a"), /*pieces_verified=*/false));
  // Verified piece by piece: stored without hashing the whole file; size is still checked.
  auto short_rev = rev;
  short_rev.size += 1;
  EXPECT_FALSE(reg_->store_bundle(short_rev, copy_of("a"), /*pieces_verified=*/true));
  ASSERT_TRUE(reg_->store_bundle(rev, copy_of("a"), /*pieces_verified=*/true));
  EXPECT_TRUE(reg_->has_bundle(revision_from_payload(rev, 0)));
}

// An upload's manifest, computed by check_manifest, goes to the sink (the swarm keeps it for
// seeding) only when it is the manifest the signed record names.
TEST_F(StoreBundleTest, CheckManifestHandsTheMatchingManifestToTheSink) {
  auto rev = make_bundle("a");
  const auto m = swarm::manifest_of_file(dir_ / "a.tar");
  ASSERT_TRUE(m);
  const auto encoded = swarm::encode_manifest(m.value());
  std::vector<std::pair<std::string, std::vector<std::byte>>> got;
  reg_->set_manifest_sink([&got](const std::string& id, std::span<const std::byte> e) {
    got.emplace_back(id, std::vector<std::byte>(e.begin(), e.end()));
  });
  auto wrong = rev;
  wrong.manifest = std::string(64, 'e');
  EXPECT_FALSE(reg_->check_manifest(wrong, dir_ / "a.tar"));
  EXPECT_TRUE(got.empty());
  rev.manifest = swarm::manifest_id(encoded);
  ASSERT_TRUE(reg_->check_manifest(rev, dir_ / "a.tar"));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, rev.id);
  EXPECT_EQ(got[0].second, encoded);
  // A record without a manifest has nothing to keep.
  rev.manifest.clear();
  ASSERT_TRUE(reg_->check_manifest(rev, dir_ / "a.tar"));
  EXPECT_EQ(got.size(), 1u);
}

}  // namespace
}  // namespace meshdeploy::deploy

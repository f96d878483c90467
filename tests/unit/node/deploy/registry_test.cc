// The registry's deployment documents in a real RocksDB: documents put deferred are read at
// once from memory, written by the flush, and replaced by a later direct put.
#include "node/deploy/registry.h"

#include "storage/db.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace meshdeploy::deploy

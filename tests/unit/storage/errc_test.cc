#include "storage/errc.h"

#include "storage/result.h"

#include <gtest/gtest.h>

#include <string>

namespace meshdeploy::storage {
namespace {

TEST(StorageErrcTest, CodesBelongToStorageCategoryWithMessages) {
  const boost::system::error_code ec = errc::corruption;  // via is_error_code_enum
  EXPECT_EQ(&ec.category(), &storage_category());
  EXPECT_EQ(ec.value(), 2);
  EXPECT_STREQ(storage_category().name(), "meshdeploy.storage");
  EXPECT_EQ(ec.message(), "storage corruption");
  EXPECT_EQ(make_error_code(errc::busy).message(), "storage busy");
  EXPECT_EQ(storage_category().message(99), "unknown storage error 99");
}

TEST(StorageErrcTest, MakeErrorKeepsCodeAndMessage) {
  const error e = make_error(errc::invalid_argument, "storage get: unknown column family 'x'");
  EXPECT_EQ(e.code, make_error_code(errc::invalid_argument));
  EXPECT_NE(e.code, make_error_code(errc::io_error));
  EXPECT_TRUE(e.code);  // a failure, unlike errc::ok
  EXPECT_FALSE(make_error_code(errc::ok));
  EXPECT_EQ(e.with_context("registry").message, "registry: storage get: unknown column family 'x'");
}

}  // namespace
}  // namespace meshdeploy::storage

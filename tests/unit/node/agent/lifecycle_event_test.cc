#include "node/agent/lifecycle_event.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace meshdeploy::agent {
namespace {

using ::testing::ElementsAre;

TEST(LifecycleEventTest, OrderIsCodeDeployInPlaceOrder) {
  std::vector<std::string> names;
  for (lifecycle_event e : lifecycle_order()) names.emplace_back(to_string(e));
  EXPECT_THAT(names, ElementsAre("BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic",
                                 "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install",
                                 "AfterInstall", "ApplicationStart", "ValidateService",
                                 "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"));
}

TEST(LifecycleEventTest, NumberingFollowsExecutionOrder) {
  const auto order = lifecycle_order();
  ASSERT_EQ(order.size(), 13u);
  for (std::size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(order[i]), i) << to_string(order[i]);
  }
}

TEST(LifecycleEventTest, EveryNameParsesBackToItsEvent) {
  for (lifecycle_event e : lifecycle_order()) {
    const auto parsed = parse_lifecycle_event(to_string(e));
    ASSERT_TRUE(parsed.has_value()) << to_string(e);
    EXPECT_EQ(*parsed, e);
  }
}

TEST(LifecycleEventTest, ParsingIsExactAndCaseSensitive) {
  for (const char* name : {"afterinstall", "AFTERINSTALL", " AfterInstall", "AfterInstall ",
                           "After Install", "", "Unknown", "AfterInstal"}) {
    EXPECT_FALSE(parse_lifecycle_event(name).has_value()) << '"' << name << '"';
  }
}

TEST(LifecycleEventTest, OutOfRangeValueHasAPrintableName) {
  EXPECT_EQ(to_string(static_cast<lifecycle_event>(200)), "Unknown");
}

TEST(LifecycleEventTest, ReservedEventsAreTheFourTheAgentRunsItself) {
  std::vector<lifecycle_event> reserved;
  for (lifecycle_event e : lifecycle_order()) {
    if (is_reserved(e)) reserved.push_back(e);
  }
  EXPECT_THAT(reserved,
              ElementsAre(lifecycle_event::block_traffic, lifecycle_event::download_bundle,
                          lifecycle_event::install, lifecycle_event::allow_traffic));
}

TEST(LifecycleEventTest, StopAndBlockTrafficHooksComeFromThePreviousRevision) {
  std::vector<lifecycle_event> previous;
  for (lifecycle_event e : lifecycle_order()) {
    if (runs_previous_revision(e)) previous.push_back(e);
  }
  EXPECT_THAT(previous,
              ElementsAre(lifecycle_event::before_block_traffic,
                          lifecycle_event::after_block_traffic, lifecycle_event::application_stop));
}

}  // namespace
}  // namespace meshdeploy::agent

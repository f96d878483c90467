// The crash-restart matrix's test hook: the node kills itself only at the point and event
// MESHDEPLOY_CRASH_AT names. Each case runs in a death-test child, so the variable (read once
// per process) is set before the first call there.
#include "node/agent/crash_point.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>

namespace meshdeploy::agent {
namespace {

TEST(CrashPointTest, KillsAtTheNamedPointOfTheNamedEvent) {
  EXPECT_EXIT(
      {
        ::setenv("MESHDEPLOY_CRASH_AT", "after-journal:BeforeInstall", 1);
        crash_point("after-journal", "BeforeInstall");
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "");
}

TEST(CrashPointTest, IgnoresOtherPointsEventsAndPrefixes) {
  EXPECT_EXIT(
      {
        ::setenv("MESHDEPLOY_CRASH_AT", "after-journal:BeforeInstall", 1);
        crash_point("after-journal", "AfterInstall");
        crash_point("after-hook-exit", "BeforeInstall");
        crash_point("after-journal", "BeforeInstal");
        crash_point("after-journa", "BeforeInstall");
        crash_point("after-journal", "BeforeInstallX");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(CrashPointTest, DoesNothingWhenUnset) {
  EXPECT_EXIT(
      {
        ::unsetenv("MESHDEPLOY_CRASH_AT");
        crash_point("after-journal", "BeforeInstall");
        crash_point("after-hook-exit", "ValidateService");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace meshdeploy::agent

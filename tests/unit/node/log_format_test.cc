#include "node/log_format.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <unistd.h>

namespace meshdeploy::node {
namespace {

using namespace std::chrono_literals;

TEST(LogFormatTest, FindsDeploymentIdsOnlyAsWholeWords) {
  EXPECT_EQ(find_deployment_id("deployment d-AB12CD34E started"), "d-AB12CD34E");
  EXPECT_EQ(find_deployment_id("d-AB12CD34E: done"), "d-AB12CD34E");
  EXPECT_EQ(find_deployment_id("x d-AB12CD34 short"), "");
  EXPECT_EQ(find_deployment_id("bad-AB12CD34E"), "");
  EXPECT_EQ(find_deployment_id("d-AB12CD34EF too long"), "");
  EXPECT_EQ(find_deployment_id("d-ab12cd34e lower"), "");
  EXPECT_EQ(find_deployment_id("two: d-AAAAAAAAA then d-BBBBBBBBB"), "d-AAAAAAAAA");
  EXPECT_EQ(find_deployment_id(""), "");
  EXPECT_EQ(find_deployment_id("d-"), "");
}

TEST(LogFormatTest, JsonLineHasTimeLevelHostIdAndMessage) {
  const auto t = std::chrono::system_clock::time_point(1'800'000'000'123ms);
  const std::string line =
      json_log_line(t, "info", "web-1", "deployment d-AB12CD34E finished: Succeeded \"ok\"");
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // exactly one line
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["time"], "2027-01-15T08:00:00.123Z");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["host"], "web-1");
  EXPECT_EQ(j["deploymentId"], "d-AB12CD34E");
  EXPECT_EQ(j["msg"], "deployment d-AB12CD34E finished: Succeeded \"ok\"");
}

TEST(LogFormatTest, FindsTheLifecycleEventOfEventLinesOnly) {
  EXPECT_EQ(find_lifecycle_event("deployment d-AB12CD34E: BeforeInstall Succeeded in 0.4 s"),
            "BeforeInstall");
  EXPECT_EQ(find_lifecycle_event("deployment d-AB12CD34E: ValidateService Failed in 2.0 s: "
                                 "ScriptFailed: exit 3"),
            "ValidateService");
  EXPECT_EQ(find_lifecycle_event("deployment d-AB12CD34E: Install"), "Install");
  EXPECT_EQ(find_lifecycle_event("deployment d-AB12CD34E: entering the update window on h"), "");
  EXPECT_EQ(find_lifecycle_event("deployment d-AB12CD34E: Installing"), "");
  EXPECT_EQ(find_lifecycle_event("note: deployment d-AB12CD34E: Install ok"), "");
  EXPECT_EQ(find_lifecycle_event("deployment d-AB12CD34: Install ok"), "");
  EXPECT_EQ(find_lifecycle_event(""), "");
  const auto j = nlohmann::json::parse(
      json_log_line({}, "info", "h", "deployment d-AB12CD34E: AfterInstall Succeeded in 0.1 s"));
  EXPECT_EQ(j["event"], "AfterInstall");
  EXPECT_EQ(j["deploymentId"], "d-AB12CD34E");
}

TEST(LogFormatTest, JsonLineSurvivesNewlinesAndInvalidUtf8) {
  const std::string msg = std::string("a\nb\xff") + "c";
  const std::string line = json_log_line({}, "warn", "h", msg);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["msg"],
            "a\nb\xEF\xBF\xBD"
            "c");
  EXPECT_FALSE(j.contains("deploymentId"));
  EXPECT_FALSE(j.contains("event"));
}

TEST(LogFormatTest, NoColourWhenNoColorIsSetOrNotATerminal) {
  ::setenv("NO_COLOR", "1", 1);
  EXPECT_FALSE(colour_allowed(0));
  ::unsetenv("NO_COLOR");
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_FALSE(colour_allowed(p[0]));  // a pipe is not a terminal
  ::close(p[0]);
  ::close(p[1]);
}

}  // namespace
}  // namespace meshdeploy::node

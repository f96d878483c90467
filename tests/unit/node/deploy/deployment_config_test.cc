#include "node/deploy/deployment_config.h"

#include <gtest/gtest.h>

namespace meshdeploy::deploy {
namespace {

deployment_config builtin(const char* name) { return find_builtin_config(name).value(); }

deployment_config custom(const char* text) { return parse_min_healthy("custom", text).value(); }

TEST(DeploymentConfigTest, BuiltinsAcceptTheCodeDeployDefaultPrefix) {
  for (const char* n : {"OneAtATime", "HalfAtATime", "AllAtOnce"}) {
    ASSERT_TRUE(find_builtin_config(n)) << n;
    ASSERT_TRUE(find_builtin_config(std::string("CodeDeployDefault.") + n)) << n;
    EXPECT_EQ(find_builtin_config(std::string("CodeDeployDefault.") + n)->name, n);
  }
  EXPECT_FALSE(find_builtin_config("TwoAtATime"));
}

TEST(DeploymentConfigTest, MaxOutOfServiceMatchesCodeDeploy) {
  struct row {
    deployment_config c;
    std::uint32_t n;
    std::uint32_t k;
  };
  const row rows[] = {
      {builtin("OneAtATime"), 1, 1},
      {builtin("OneAtATime"), 10, 1},
      {builtin("HalfAtATime"), 1, 1},
      {builtin("HalfAtATime"), 2, 1},
      {builtin("HalfAtATime"), 9, 4},
      {builtin("HalfAtATime"), 10, 5},
      {builtin("AllAtOnce"), 1, 1},
      {builtin("AllAtOnce"), 7, 7},
      {custom("6"), 9, 3},     // CodeDeploy docs: HOST_COUNT 6 of 9 -> 3 at a time
      {custom("40%"), 9, 5},   // FLEET_PERCENT 40 of 9 -> n = 4 -> 5 at a time
      {custom("85%"), 10, 1},  // n = 9
      {custom("0"), 4, 4},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(max_out_of_service(r.c, r.n), r.k) << r.c.name << " " << r.c.value << " n=" << r.n;
  }
}

TEST(DeploymentConfigTest, MinHealthyPercentRoundsUp) {
  EXPECT_EQ(min_healthy_hosts(custom("40%"), 9), 4u);
  EXPECT_EQ(min_healthy_hosts(custom("85%"), 10), 9u);
  EXPECT_EQ(min_healthy_hosts(custom("50%"), 3), 2u);
  EXPECT_EQ(min_healthy_hosts(builtin("HalfAtATime"), 5), 3u);
}

TEST(DeploymentConfigTest, ParseMinHealthyRejectsBadValues) {
  for (const char* bad : {"", "%", "abc", "-1", "100%", "3.5", "12x", "5 %"}) {
    auto r = parse_min_healthy("c", bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(custom("75%").type, min_healthy_type::fleet_percent);
  EXPECT_EQ(custom("3").type, min_healthy_type::host_count);
}

TEST(DeploymentConfigTest, CustomNamesCannotShadowBuiltins) {
  EXPECT_FALSE(validate_custom_config_name("OneAtATime"));
  EXPECT_FALSE(validate_custom_config_name("CodeDeployDefault.Mine"));
  EXPECT_FALSE(validate_custom_config_name("has space"));
  EXPECT_FALSE(validate_custom_config_name(""));
  EXPECT_TRUE(validate_custom_config_name("Most-Of-Them_v2"));
}

TEST(DeploymentConfigTest, HealthConstraintsRejectImpossibleMinimum) {
  EXPECT_FALSE(check_health_constraints(custom("3"), 3));
  EXPECT_FALSE(check_health_constraints(custom("99%"), 10));
  EXPECT_TRUE(check_health_constraints(custom("2"), 3));
  EXPECT_TRUE(check_health_constraints(builtin("OneAtATime"), 1));
}

host_tally tally(std::uint32_t n, std::uint32_t ok, std::uint32_t failed, bool only_last = false) {
  return host_tally{n, ok, failed, n - ok - failed, only_last};
}

TEST(DeploymentConfigTest, OneAtATimeToleratesOnlyTheLastHostFailing) {
  const auto c = builtin("OneAtATime");
  EXPECT_EQ(decide(c, tally(3, 3, 0)), verdict::succeeded);
  EXPECT_EQ(decide(c, tally(3, 2, 1, /*only_last=*/true)), verdict::succeeded);
  EXPECT_EQ(decide(c, tally(3, 1, 1, /*only_last=*/false)), verdict::failed);
  EXPECT_EQ(decide(c, tally(1, 0, 1, /*only_last=*/true)), verdict::failed) << "needs one success";
  EXPECT_EQ(decide(c, tally(3, 1, 0)), verdict::running);
}

TEST(DeploymentConfigTest, HalfAtATimeNeedsHalfRoundedUp) {
  const auto c = builtin("HalfAtATime");
  EXPECT_EQ(decide(c, tally(4, 2, 2)), verdict::succeeded);
  EXPECT_EQ(decide(c, tally(5, 2, 3)), verdict::failed);
  EXPECT_EQ(decide(c, tally(5, 2, 1)), verdict::running);
  EXPECT_EQ(decide(c, tally(5, 1, 2)), verdict::failed) << "2 failed hosts hold both slots";
  EXPECT_EQ(decide(c, tally(5, 0, 3)), verdict::failed) << "fails as soon as 3 cannot succeed";
}

TEST(DeploymentConfigTest, AllAtOnceNeedsOneSuccess) {
  const auto c = builtin("AllAtOnce");
  EXPECT_EQ(decide(c, tally(4, 1, 3)), verdict::succeeded);
  EXPECT_EQ(decide(c, tally(4, 0, 4)), verdict::failed);
}

TEST(DeploymentConfigTest, CustomCountFailsWhenMinimumUnreachable) {
  // 10 hosts at 85%: n = 9, so one failure is fatal.
  const auto c = custom("85%");
  EXPECT_EQ(decide(c, tally(10, 0, 1)), verdict::failed);
  EXPECT_EQ(decide(c, tally(10, 9, 0)), verdict::running);
  EXPECT_EQ(decide(c, tally(10, 10, 0)), verdict::succeeded);
  // HOST_COUNT 6 of 9: three failures are tolerated, four are not.
  EXPECT_EQ(decide(custom("6"), tally(9, 6, 3)), verdict::succeeded);
  EXPECT_EQ(decide(custom("6"), tally(9, 5, 4)), verdict::failed);
}

}  // namespace
}  // namespace meshdeploy::deploy

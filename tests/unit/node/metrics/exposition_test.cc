#include "node/metrics/exposition.h"

#include "tests/support/prometheus_text.h"

#include <gtest/gtest.h>

#include <array>

namespace meshdeploy::node::metrics {
namespace {

using test::parse_prometheus_text;

TEST(ExpositionTest, LabelValuesAreEscapedAndReadBackIntact) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  const std::string hostile = "evil\"} 1\nmeshdeploy_fake 2 \\";
  exposition e;
  e.family("x_total", "counter", "A help\nwith a line feed and a \\ backslash.");
  e.sample("x_total", {{"host", hostile}}, std::uint64_t{3});
  const auto p = parse_prometheus_text(e.text());
  EXPECT_TRUE(p.problems.empty()) << e.text() << ::testing::PrintToString(p.problems);
  ASSERT_EQ(p.samples.size(), 1u) << e.text();
  EXPECT_EQ(p.samples[0].labels.at("host"), hostile);
  EXPECT_EQ(p.samples[0].value, 3);
}

TEST(ExpositionTest, HistogramBucketsAreCumulativeInclusiveAndEndInInf) {
  static constexpr std::array<double, 3> bounds{0.1, 1, 10};
  histogram h(bounds);
  for (double v : {0.05, 0.1, 0.5, 1.0, 2.0, 11.0, 500.0}) h.observe(v);
  exposition e;
  e.family("d_seconds", "histogram", "Durations.");
  h.write(e, "d_seconds", {{"event", "AfterInstall"}});
  const auto p = parse_prometheus_text(e.text());
  EXPECT_TRUE(p.problems.empty()) << e.text() << ::testing::PrintToString(p.problems);
  // le is inclusive: 0.1 falls into le="0.1".
  EXPECT_EQ(p.sum("d_seconds_bucket", {{"le", "0.1"}}), 2);
  EXPECT_EQ(p.sum("d_seconds_bucket", {{"le", "1"}}), 4);
  EXPECT_EQ(p.sum("d_seconds_bucket", {{"le", "10"}}), 5);
  EXPECT_EQ(p.sum("d_seconds_bucket", {{"le", "+Inf"}}), 7);
  EXPECT_EQ(p.sum("d_seconds_count", {{"event", "AfterInstall"}}), 7);
  EXPECT_DOUBLE_EQ(*p.sum("d_seconds_sum"), 0.05 + 0.1 + 0.5 + 1 + 2 + 11 + 500);
}

TEST(ExpositionTest, AnEmptyHistogramStillHasEveryBucketAndZeroCount) {
  histogram h(api_latency_buckets());
  exposition e;
  e.family("h", "histogram", "Empty.");
  h.write(e, "h", {});
  const auto p = parse_prometheus_text(e.text());
  EXPECT_TRUE(p.problems.empty()) << ::testing::PrintToString(p.problems);
  EXPECT_EQ(p.sum("h_bucket", {{"le", "+Inf"}}), 0);
  EXPECT_EQ(p.sum("h_count"), 0);
  std::size_t buckets = 0;
  for (const auto& s : p.samples) buckets += s.name == "h_bucket";
  EXPECT_EQ(buckets, api_latency_buckets().size() + 1);
}

TEST(ExpositionTest, TheCheckerCatchesBrokenText) {
  // The checker the node's tests rely on must itself fail on what it claims to catch.
  EXPECT_FALSE(
      parse_prometheus_text("# HELP a x\n# TYPE a gauge\n# HELP a x\na 1\n").problems.empty());
  EXPECT_FALSE(parse_prometheus_text("b 1\n").problems.empty());
  EXPECT_FALSE(parse_prometheus_text("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                                     "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n")
                   .problems.empty());
  EXPECT_FALSE(parse_prometheus_text("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
                                     "h_sum 1\nh_count 1\n")
                   .problems.empty());
  EXPECT_FALSE(
      parse_prometheus_text("# HELP c x\n# TYPE c counter\nc{a=\"x} 1\n").problems.empty());
}

}  // namespace
}  // namespace meshdeploy::node::metrics

// Hook logs as shown to operators (node/deploy/log_text.h): the tail cut, and reading a log
// file in blocks with bounded memory, checked against the whole-file reference
// (agent::filter_log, then tail_log) on random logs with markers, long lines and sizes across
// several read blocks.
#include "node/deploy/log_text.h"

#include "node/agent/executor.h"
#include "node/deploy/errc.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace meshdeploy::deploy {
namespace {

struct tail_case {
  std::string text;
  std::size_t max;
  log_text want;
};

TEST(TailLogTest, KeepsTheLastBytesFromALineStart) {
  const std::vector<tail_case> cases = {
      {"", 10, {"", false, 0}},
      {"short\n", 10, {"short\n", false, 6}},
      {"exactly10\n", 10, {"exactly10\n", false, 10}},
      {"aaaa\nbbbb\ncccc\n", 10, {"bbbb\ncccc\n", true, 15}},  // the cut is at a line start
      {"aaaa\nbbbb\ncccc\n", 8, {"cccc\n", true, 15}},         // inside a line: next line
      {"0123456789abcdef", 4, {"cdef", true, 16}},             // one long line: its end
      {"aaaa\nbbbbbbbbbb", 6, {"bbbbbb", true, 15}},           // no line starts in the tail
  };
  for (const auto& c : cases) {
    EXPECT_EQ(tail_log(c.text, c.max), c.want) << "text '" << c.text << "' max " << c.max;
  }
}

// A random log: marker lines of a few events, ordinary lines of 0-200 bytes, now and then a
// line longer than a read block, with or without a final line break.
std::string random_log(std::mt19937& rng, std::size_t target) {
  static const std::vector<std::string> events = {"BeforeInstall", "AfterInstall",
                                                  "ValidateService"};
  std::string log;
  while (log.size() < target) {
    const unsigned kind = rng() % 20;
    if (kind == 0) {
      log += "[2026-11-29 12:00:00] LifecycleEvent - " + events[rng() % events.size()] + "\n";
    } else if (kind == 1) {
      log += std::string(70'000 + rng() % 70'000, static_cast<char>('a' + rng() % 26)) + "\n";
    } else {
      log += std::string(rng() % 200, static_cast<char>('a' + rng() % 26)) + "\n";
    }
  }
  if (rng() % 2 == 0) log += "no line break at the end";
  return log;
}

TEST(ReadLogTailTest, MatchesFilteringAndCuttingTheWholeFile) {
  test::temp_dir dir("log-text-test");
  std::mt19937 rng(7);
  const std::vector<std::string> events = {"", "BeforeInstall", "AfterInstall", "ValidateService",
                                           "ApplicationStart"};
  for (int round = 0; round < 40; ++round) {
    const std::string log = random_log(rng, rng() % 2 == 0 ? rng() % 5'000 : 300'000);
    const auto file = dir / "scripts.log";
    std::ofstream(file, std::ios::binary | std::ios::trunc) << log;
    for (const auto& event : events) {
      for (std::size_t max : {std::size_t{1}, std::size_t{100}, std::size_t{4096},
                              std::size_t{100'000}, std::size_t{1} << 20}) {
        auto got = read_log_tail(file, event, max);
        ASSERT_TRUE(got) << got.error().message;
        EXPECT_EQ(got.value(), tail_log(agent::filter_log(log, event), max))
            << "round " << round << ", event '" << event << "', max " << max << ", log of "
            << log.size() << " bytes";
      }
    }
  }
}

TEST(ReadLogTailTest, AMissingFileIsNotFound) {
  test::temp_dir dir("log-text-test");
  auto got = read_log_tail(dir / "none.log", "", 100);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, make_error_code(errc::not_found));
}

}  // namespace
}  // namespace meshdeploy::deploy

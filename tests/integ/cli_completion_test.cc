// `meshdeploy completion bash` from the real binary: the script it prints completes the real
// command tree in bash (tests/unit/cli/completion_test.cc covers the generator on a small tree).
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

namespace meshdeploy {
namespace {

using namespace std::chrono_literals;

TEST(CliCompletionTest, BashScriptCompletesTheRealCommands) {
  test::temp_dir dir;
  auto gen = test::run_command({test::meshdeploy_binary(), "completion", "bash"}, {}, 20s);
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  test::write_file(dir / "meshdeploy.bash", gen.out);
  auto complete = [&](const std::string& words) {
    const std::string cmd = "source '" + (dir / "meshdeploy.bash").string() + "' && COMP_WORDS=(" +
                            words +
                            ") && COMP_CWORD=$((${#COMP_WORDS[@]}-1)) && _meshdeploy && "
                            "printf '%s\\n' \"${COMPREPLY[@]}\" | sort";
    auto r = test::run_command({"/bin/bash", "-c", cmd}, {}, 20s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  EXPECT_EQ(complete("meshdeploy deployme"), "deployments\n");
  EXPECT_EQ(complete("meshdeploy node ''"), "check-config\nrun\n");
  EXPECT_EQ(complete("meshdeploy --api 127.0.0.1:7947 node run --max-up"), "--max-upload-rate\n");
}

TEST(CliCompletionTest, RejectsUnknownShell) {
  auto r = test::run_command({test::meshdeploy_binary(), "completion", "fish"}, {}, 20s);
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace meshdeploy

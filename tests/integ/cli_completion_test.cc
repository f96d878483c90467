// `meshdeploy completion bash` from the real binary: the script it prints completes the real
// command tree in bash (tests/unit/cli/completion_test.cc covers the generator on a small tree).
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <filesystem>

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

TEST(CliCompletionTest, ZshScriptParsesRegistersAndCompletesTheRealCommands) {
  if (!std::filesystem::exists("/usr/bin/zsh")) {
    GTEST_SKIP() << "/usr/bin/zsh is missing (Debian's zsh; scripts/setup installs it)";
  }
  test::temp_dir dir;
  auto gen = test::run_command({test::meshdeploy_binary(), "completion", "zsh"}, {}, 20s);
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const std::string file = (dir / "_meshdeploy").string();
  test::write_file(dir / "_meshdeploy", gen.out);
  auto syntax = test::run_command({"/usr/bin/zsh", "-n", file}, {}, 20s);
  EXPECT_EQ(syntax.exit_code, 0) << syntax.err;
  // Loaded as a user would (`source <(meshdeploy completion zsh)` after compinit), in a zsh
  // without any rc file; compadd is replaced by a printer of the candidates matching PREFIX (as
  // the real one filters them) so the real completion function runs outside the line editor.
  auto complete = [&](const std::string& words) {
    const std::string script =
        "autoload -Uz compinit && compinit -u -d '" + (dir / "zcompdump").string() +
        "' && source '" + file +
        "' && [[ ${_comps[meshdeploy]} == _meshdeploy_zsh ]] || { print -u2 not registered; "
        "exit 3 }; compadd() { [[ $1 == -- ]] && shift; local w; for w in \"$@\"; do [[ $w == "
        "${PREFIX}* ]] && print -r -- $w; done; true }; _files() { print FILES }; words=(" +
        words + "); CURRENT=${#words}; PREFIX=${words[CURRENT]}; _meshdeploy_zsh | sort";
    auto r = test::run_command({"/usr/bin/zsh", "-f", "-c", script}, {}, 20s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  EXPECT_EQ(complete("meshdeploy deployme"), "deployments\n");
  EXPECT_EQ(complete("meshdeploy node ''"), "check-config\nrun\n");
  EXPECT_EQ(complete("meshdeploy --api 127.0.0.1:7947 node run --max-up"), "--max-upload-rate\n");
  EXPECT_EQ(complete("meshdeploy --output ''"), "json\ntable\n");
  EXPECT_EQ(complete("meshdeploy deploy --source ''"), "FILES\n");
}

TEST(CliCompletionTest, RejectsUnknownShell) {
  auto r = test::run_command({test::meshdeploy_binary(), "completion", "fish"}, {}, 20s);
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace meshdeploy

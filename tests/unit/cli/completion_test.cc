#include "cli/completion.h"

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

namespace meshdeploy::cli {
namespace {

// A small tree shaped like meshdeploy's: root options, nested subcommands, valued options.
struct sample_app {
  CLI::App app{"sample", "meshdeploy"};
  std::string api, config, out;
  bool wait = false, verbose = false;
  sample_app() {
    app.add_option("--api", api, "node");
    app.add_flag("-v,--verbose", verbose, "more output");
    app.add_option("-o,--output", out, "format")->check(CLI::IsMember({"table", "json"}));
    auto* deploy = app.add_subcommand("deploy", "deploy");
    deploy->add_flag("--wait", wait, "wait");
    deploy->add_option("--app", api, "app");
    app.add_subcommand("deployments", "list");
    auto* node = app.add_subcommand("node", "node");
    auto* run = node->add_subcommand("run", "run");
    run->add_option("--config", config, "file");
    run->add_option("--tag", config, "tag");
    node->add_subcommand("check-config", "check");
  }
};

// Sources `script` in bash, sets COMP_WORDS to `words` (the last is the word being completed)
// and prints COMPREPLY sorted, one per line.
std::string complete(const std::string& script, const std::string& words) {
  test::temp_dir dir;
  test::write_file(dir / "completion.bash", script);
  const std::string cmd = "cd '" + dir.path().string() + "' && source ./completion.bash && " +
                          "COMP_WORDS=(" + words + ") && COMP_CWORD=$((${#COMP_WORDS[@]}-1)) && " +
                          "_meshdeploy && printf '%s\\n' \"${COMPREPLY[@]}\" | sort";
  auto r = test::run_command({"/bin/bash", "-c", cmd}, {}, std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

TEST(CompletionTest, BashCompletesSubcommandsAtEachLevel) {
  sample_app s;
  const std::string script = bash_completion(s.app, "meshdeploy");
  EXPECT_EQ(complete(script, "meshdeploy dep"), "deploy\ndeployments\n");
  EXPECT_EQ(complete(script, "meshdeploy node ''"), "check-config\nrun\n");
  // Options and their values do not confuse the walk down the tree.
  EXPECT_EQ(complete(script, "meshdeploy --api 127.0.0.1:1 -o json node r"), "run\n");
}

TEST(CompletionTest, BashTreatsFlagsAsTakingNoValue) {
  sample_app s;
  const std::string script = bash_completion(s.app, "meshdeploy");
  // After a flag (or --help) comes a command, not the flag's value (files).
  EXPECT_EQ(complete(script, "meshdeploy --verbose ''"), "deploy\ndeployments\nnode\n");
  EXPECT_EQ(complete(script, "meshdeploy -v --help ''"), "deploy\ndeployments\nnode\n");
  EXPECT_EQ(complete(script, "meshdeploy -v node r"), "run\n");
  EXPECT_EQ(complete(script, "meshdeploy deploy --wait --a"), "--app\n");
}

TEST(CompletionTest, BashCompletesOptionsOfTheCommandTyped) {
  sample_app s;
  const std::string script = bash_completion(s.app, "meshdeploy");
  EXPECT_EQ(complete(script, "meshdeploy node run --c"), "--config\n");
  EXPECT_EQ(complete(script, "meshdeploy deploy --w"), "--wait\n");
  EXPECT_EQ(complete(script, "meshdeploy --a"), "--api\n");
}

TEST(CompletionTest, BashCompletesFileNamesAfterAValuedOption) {
  sample_app s;
  test::temp_dir dir;
  test::write_file(dir / "node.yaml", "name: a\n");
  const std::string script = bash_completion(s.app, "meshdeploy");
  const std::string prefix = (dir / "node.y").string();
  EXPECT_EQ(complete(script, "meshdeploy node run --config '" + prefix + "'"),
            (dir / "node.yaml").string() + "\n");
}

TEST(CompletionTest, BashCompletesTheValuesOfAChoiceOption) {
  sample_app s;
  const std::string script = bash_completion(s.app, "meshdeploy");
  EXPECT_EQ(complete(script, "meshdeploy -o ''"), "json\ntable\n");
  EXPECT_EQ(complete(script, "meshdeploy --output t"), "table\n");
}

TEST(CompletionTest, ZshScriptIsGeneratedFromTheSameTree) {
  sample_app s;
  const std::string z = zsh_completion(s.app, "meshdeploy");
  EXPECT_EQ(z.rfind("#compdef meshdeploy\n", 0), 0u);
  EXPECT_NE(z.find("\"node run\") subs=\"\"; opts=\"--help --config --tag\""), std::string::npos)
      << z;
  EXPECT_NE(z.find("compdef _meshdeploy_zsh meshdeploy"), std::string::npos);
  // zsh itself is not installed here; when it is, check the script parses.
  auto has_zsh = test::run_command({"/bin/sh", "-c", "command -v zsh"});
  if (has_zsh.exit_code != 0) GTEST_SKIP() << "zsh not installed: only the text is checked";
  test::temp_dir dir;
  test::write_file(dir / "_meshdeploy", z);
  auto r = test::run_command({"/bin/sh", "-c", "zsh -n '" + (dir / "_meshdeploy").string() + "'"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace meshdeploy::cli

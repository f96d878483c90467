// End-to-end time of a no-op deployment (examples/noop: five hooks that run
// `true`) on one real node, through the real CLI: `meshdeploy deploy
// --revision ID --wait`, from process start to exit.
//
// Baseline, measured in the same run: the unavoidable part of that work done
// by hand -- one CLI process start (`meshdeploy --version`) plus running the
// five hook scripts one after another with /bin/sh. The ratio of the two is
// meshdeploy's own overhead factor.
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>

namespace meshdeploy::test {
namespace {

struct fixture {
  temp_dir dir{"meshdeploy-bench"};
  std::unique_ptr<node_process> node;
  std::string revision;

  fixture() {
    node = std::make_unique<node_process>("bench-1", dir / "data", dir / "root",
                                          std::vector<std::string>{"role=bench"});
    if (node->api().empty()) std::abort();
    node->cli({"app", "create", "bench"});
    node->cli({"group", "create", "--app", "bench", "--name", "g", "--tag", "role=bench"});
    auto push =
        node->cli({"push", "--app", "bench", "--source", source_path("examples/noop").string()});
    if (push.exit_code != 0) std::abort();
    revision = push.out.substr(0, push.out.find('\n'));
  }
};

fixture& shared() {
  static fixture f;
  return f;
}

void BM_NoopDeployViaCli(benchmark::State& state) {
  auto& f = shared();
  for (auto _ : state) {
    auto r = f.node->cli({"deploy", "--app", "bench", "--group", "g", "--revision", f.revision,
                          "--wait", "--output", "json"});
    if (r.exit_code != 0) {
      state.SkipWithError("deployment failed");
      break;
    }
  }
}
BENCHMARK(BM_NoopDeployViaCli)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(30);

void BM_BaselineCliStartPlusFiveHooks(benchmark::State& state) {
  const std::string script = source_path("examples/noop/scripts/true.sh").string();
  for (auto _ : state) {
    run_command({meshdeploy_binary(), "--version"});
    for (int i = 0; i < 5; ++i) run_command({"/bin/sh", script});
  }
}
BENCHMARK(BM_BaselineCliStartPlusFiveHooks)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(30);

}  // namespace
}  // namespace meshdeploy::test

BENCHMARK_MAIN();

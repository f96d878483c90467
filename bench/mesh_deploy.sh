#!/usr/bin/env bash
# End-to-end time of a no-op deployment (examples/noop: every hook is `true`) on a mesh of N
# real `meshdeploy node run` processes on loopback, for AllAtOnce and OneAtATime, measured
# from the CLI's submit to the final status (deploy --wait), each run REPEAT times on a fresh
# group.
#
# Per run it prints: the total; the hook time (per wave, the slowest host's summed hook-event
# durations from the final status, summed over waves); the control overhead per wave
# ((total - hook time) / waves; OneAtATime has N waves, AllAtOnce one); and for OneAtATime the
# median hand-off (one host's last event end to the next host's first event start) and the
# median time a host spends in its window (first event start to last event end); and the CPU
# time all node processes used during the run (their hooks included).
#
# Usage: bench/mesh_deploy.sh BUILD_DIR [N] [REPEAT] [CONFIGS]
#   CONFIGS: space-separated deployment configurations (default "AllAtOnce OneAtATime").
# Environment: MESHDEPLOY_BENCH_LOG=LEVEL sets the nodes' --log-level (default warn);
# MESHDEPLOY_BENCH_KEEP=1 keeps the work dir (nodes' logs in h*.log) and prints its path;
# MESHDEPLOY_BENCH_SETTLE=SECONDS waits that long after the nodes are up and the revision is
# pushed before the first run (default 0.5);
# MESHDEPLOY_BENCH_FRESH=1 pushes a new revision (a copy of examples/noop with one file
# changed) before each run, untimed, so every run also moves a bundle no host holds yet from
# node 1 to all hosts (by default one revision is pushed once and only the first run moves it);
# MESHDEPLOY_BENCH_METRICS=1 prints, per run, how node h2's counters in /metrics moved (records
# received / stored / stale, gossip packets and streams, sealed bytes).
# Every wait is bounded: node start-up 10 s each, membership 30 s, each deployment 120 s
# (MESHDEPLOY_BENCH_TIMEOUT=SECONDS changes the last; 32 nodes before this session's changes
# needed up to 112 s).
set -euo pipefail
bin="$(cd "$1" && pwd)/meshdeploy"
n="${2:-8}"
repeat="${3:-3}"
configs="${4:-AllAtOnce OneAtATime}"
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/nodes.sh
source "$repo/bench/nodes.sh"
work=$(mktemp -d /tmp/meshdeploy-bench-XXXXXX)
cleanup() {
  bench_stop_nodes
  if [ "${MESHDEPLOY_BENCH_KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
bench_nodes_init "$bin" "$work"
args=(--gossip-profile local --bind 127.0.0.1:0 --api 127.0.0.1:0 --tag role=app)
scrape() {  # node h2's /metrics
  curl -s --max-time 5 "http://${bench_api[2]}/metrics" || true
}
# Node 1 first (the seed), then all others at once (each port picked by the kernel).
bench_start_node 1 "${args[@]}"
bench_wait_ready 1 10
for i in $(seq 2 "$n"); do bench_start_node "$i" "${args[@]}" --join "${bench_gaddr[1]}"; done
for i in $(seq 2 "$n"); do bench_wait_ready "$i" 10; done
export MESHDEPLOY_API=${bench_api[1]} MESHDEPLOY_IDENTITY="$work/c/bench.key"
bench_wait_alive 1 "$n" 30
"$bin" app create noop >/dev/null
rev=$("$bin" push --app noop --source "$repo/examples/noop" | head -n 1)
sleep "${MESHDEPLOY_BENCH_SETTLE:-0.5}"
echo "nodes=$n repeat=$repeat binary=$bin machine=$(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
for config in $configs; do
  for r in $(seq 1 "$repeat"); do
    g="$config-$r"
    if [ "${MESHDEPLOY_BENCH_FRESH:-0}" = 1 ]; then
      rm -rf "$work/rev" && cp -r "$repo/examples/noop" "$work/rev"
      echo "$config $r $(date +%s%N)" >"$work/rev/run.txt"
      rev=$("$bin" push --app noop --source "$work/rev" | head -n 1)
    fi
    "$bin" group create --app noop --name "$g" --tag role=app --config "$config" >/dev/null
    [ "${MESHDEPLOY_BENCH_METRICS:-0}" = 1 ] && scrape >"$work/m0"
    c0=$(bench_nodes_cpu_ms)
    t0=$(date +%s%N)
    timeout "${MESHDEPLOY_BENCH_TIMEOUT:-120}" "$bin" deploy --app noop --group "$g" --revision "$rev" --wait -o json \
      >"$work/status.json" 2>/dev/null || echo "  ($g did not succeed)"
    t1=$(date +%s%N)
    c1=$(bench_nodes_cpu_ms)
    python3 - "$config" "$r" $(( (t1 - t0) / 1000000 )) "$work/status.json" $(( c1 - c0 )) <<'EOF'
import json, sys
from datetime import datetime
config, run, total, path, cpu = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
hooks = {"ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"}
def ms(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000
try:
    doc = json.load(open(path))
except Exception:
    print(f"{config} run {run}: {total} ms total (no status document)")
    sys.exit(0)
windows = []  # (first start, last end, hook ms) per host
for h in doc.get("hosts", []):
    ev = [e for e in h.get("events", []) if e.get("startTime") and e.get("endTime")]
    if not ev:
        continue
    hook = sum(ms(e["endTime"]) - ms(e["startTime"]) for e in ev if e["name"] in hooks)
    windows.append((min(ms(e["startTime"]) for e in ev), max(ms(e["endTime"]) for e in ev), hook))
windows.sort()
n = len(windows)
if config == "OneAtATime":
    waves, hook_ms = n, sum(w[2] for w in windows)
else:  # AllAtOnce (and anything else): one wave, the slowest host's hooks
    waves, hook_ms = 1, max((w[2] for w in windows), default=0)
waves = max(waves, 1)
line = (f"{config} run {run}: {total} ms total, {doc.get('status')}, hooks {hook_ms:.0f} ms, "
        f"overhead {(total - hook_ms) / waves:.0f} ms per wave ({waves} waves), "
        f"node CPU {cpu} ms")
if config == "OneAtATime" and n > 1:
    gaps = sorted(windows[i + 1][0] - windows[i][1] for i in range(n - 1))
    inside = sorted(w[1] - w[0] for w in windows)
    line += f"; median hand-off {gaps[len(gaps) // 2]:.0f} ms, in window {inside[n // 2]:.0f} ms"
print(line)
EOF
    if [ "${MESHDEPLOY_BENCH_METRICS:-0}" = 1 ]; then
      scrape >"$work/m1"
      python3 - "$work/m0" "$work/m1" <<'EOF'
import sys
def load(p):
    out = {}
    for line in open(p):
        if line.startswith("#") or not line.strip():
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
moved = [f"{k} +{b[k] - a.get(k, 0):.0f}" for k in sorted(b) if "_total" in k and b[k] != a.get(k, 0)]
print("  h2 /metrics moved: " + "; ".join(moved))
EOF
    fi
  done
done

#!/usr/bin/env bash
# Gossip membership with N real `meshdeploy node run` processes (profile lan, one per 127.0.0.I
# address), against issue 3's real-process targets, and the simulator under the same conditions:
#
#  1. starts N nodes (node 1, then the others joining it, ten at a time) and waits until every
#     node's GET /v1/members lists N alive;
#  2. steady state: after SETTLE seconds, WINDOW seconds with no API traffic: per-node CPU from
#     /proc/PID/stat (utime+stime), traffic from each node's /metrics (sealed bytes: envelope and
#     crypto, no IP/UDP/TCP headers) and, when the cluster has a network namespace of its own
#     (as root, by default), from the loopback device's counters, which count every IP packet
#     the cluster sends (IP/UDP/TCP headers, ACKs and handshakes included; lo adds no link
#     header: a 100-byte UDP payload counts 128 bytes);
#  3. KILLS trials: kill -9 of a random node, then every survivor's /v1/members is polled (one
#     keep-alive connection each, a round at most every 100 ms) until all list it dead; the
#     node is restarted (same data dir, new port, joining a live node) and, once all N are alive
#     again, the next trial starts SETTLE_KILL seconds later;
#  4. after the cluster is gone: bench_gossip_sim at N, profile lan, SIM_CRASHES crashes each
#     restarted 30 s later (--restart-crashed 1), and the report (bench/gossip_real_probe.py).
#
# Usage: bench/gossip_real.sh BUILD_DIR [N] [KILLS] [WINDOW]     (defaults 50, 15, 60)
# Environment: MESHDEPLOY_BENCH_SETTLE (20 s), MESHDEPLOY_BENCH_SETTLE_KILL (10 s),
# MESHDEPLOY_BENCH_SEED (1: victims and the sim seed), MESHDEPLOY_BENCH_SIM_CRASHES (100),
# MESHDEPLOY_BENCH_NETNS=0 runs in the caller's network namespace (no loopback counters),
# MESHDEPLOY_BENCH_LOG=LEVEL the nodes' --log-level (warn), MESHDEPLOY_BENCH_KEEP=1 keeps the
# work dir (logs, per-trial JSON). Every wait is bounded; Ctrl-C stops every node started.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ]; then
  sed -n '2,26p' "$0" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
bin="$build/meshdeploy"
n="${2:-50}"
kills="${3:-15}"
window="${4:-60}"
settle="${MESHDEPLOY_BENCH_SETTLE:-20}"
settle_kill="${MESHDEPLOY_BENCH_SETTLE_KILL:-10}"
seed="${MESHDEPLOY_BENCH_SEED:-1}"
sim_crashes="${MESHDEPLOY_BENCH_SIM_CRASHES:-100}"
probe=(python3 "$here/gossip_real_probe.py")
if [ "$n" -lt 3 ] || [ "$n" -gt 250 ]; then
  echo "N must be 3..250 (one 127.0.0.I address each)" >&2
  exit 2
fi

# A network namespace of our own: the loopback counters then count this cluster and nothing else.
if [ "${MESHDEPLOY_BENCH_NETNS:-1}" = 1 ] && [ -z "${MESHDEPLOY_BENCH_IN_NETNS:-}" ] &&
  [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
  export MESHDEPLOY_BENCH_IN_NETNS=1
  exec unshare -n -- "$0" "$@"
fi
if [ "${MESHDEPLOY_BENCH_IN_NETNS:-}" = 1 ]; then
  ip link set lo up
fi

work=$(mktemp -d /tmp/meshdeploy-gossip-real-XXXXXX)
declare -A pid api gaddr
cleanup() {
  trap - EXIT INT TERM
  for i in "${!pid[@]}"; do kill "${pid[$i]}" 2>/dev/null || true; done
  for _ in $(seq 1 50); do  # up to 5 s for a clean stop, then kill -9
    local left=0
    for i in "${!pid[@]}"; do kill -0 "${pid[$i]}" 2>/dev/null && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  for i in "${!pid[@]}"; do kill -9 "${pid[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${MESHDEPLOY_BENCH_KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin" cluster init --dir "$work/c" --operator bench >/dev/null
common=(--keyring "$work/c/keyring.txt" --admin-pub "$work/c/admin.pub" --grant "$work/c/bench.grant"
        --gossip-profile lan --tag role=app --log-level "${MESHDEPLOY_BENCH_LOG:-warn}")
start_node() {  # start_node I [--join ADDR]: node hI on 127.0.0.I, ports picked by the kernel
  local i=$1
  shift
  rm -f "$work/d$i/gossip.addr" "$work/d$i/api.addr"
  "$bin" node run --name "h$i" --data-dir "$work/d$i" --install-root "$work/r$i" \
    --bind "127.0.0.$i:0" --api "127.0.0.$i:0" "${common[@]}" "$@" >>"$work/h$i.log" 2>&1 &
  pid[$i]=$!
}
wait_ready() {  # wait_ready I: up to 30 s for node I's address files
  local i=$1
  for _ in $(seq 1 300); do
    if [ -s "$work/d$i/gossip.addr" ] && [ -s "$work/d$i/api.addr" ]; then
      gaddr[$i]=$(cat "$work/d$i/gossip.addr")
      api[$i]=$(cat "$work/d$i/api.addr")
      return 0
    fi
    sleep 0.1
  done
  echo "node h$i did not start within 30 s; its log:" >&2
  tail -n 20 "$work/h$i.log" >&2
  exit 1
}
all_apis() { for i in $(seq 1 "$n"); do echo "${api[$i]}"; done; }

echo "gossip_real: N=$n kills=$kills window=${window}s settle=${settle}s seed=$seed," \
  "netns=${MESHDEPLOY_BENCH_IN_NETNS:-0}, binary $bin"
echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg) at start"
t_start=$(date +%s)
start_node 1
wait_ready 1
for i in $(seq 2 "$n"); do
  start_node "$i" --join "${gaddr[1]}"
  if [ $((i % 10)) = 0 ] || [ "$i" = "$n" ]; then
    for j in $(seq $((i - (i - 1) % 10)) "$i"); do wait_ready "$j"; done
  fi
done
t=$("${probe[@]}" alive "$n" 120 $(all_apis))
echo "all $n nodes see $n alive ${t}s after the last start ($(($(date +%s) - t_start)) s in all)"
sleep "$settle"

pids=()
for i in $(seq 1 "$n"); do pids+=("${pid[$i]}"); done
"${probe[@]}" steady "$window" "$work" "${pids[@]}" -- $(all_apis)
echo "steady window done, load $(cut -d' ' -f1-3 /proc/loadavg)"

RANDOM=$seed
for k in $(seq 1 "$kills"); do
  v=$((RANDOM % n + 1))
  survivors=()
  for i in $(seq 1 "$n"); do [ "$i" = "$v" ] || survivors+=("${api[$i]}"); done
  printf 'kill %d/%d: ' "$k" "$kills"
  disown "${pid[$v]}"  # bash reaps it without a "Killed" line
  "${probe[@]}" detect "${pid[$v]}" "h$v" 30 0.1 "$work/kill$k.json" "${survivors[@]}" ||
    echo "  (trial $k: not seen dead everywhere within 30 s; counted as such)"
  j=$((v % n + 1))
  start_node "$v" --join "${gaddr[$j]}"
  wait_ready "$v"
  "${probe[@]}" alive "$n" 60 $(all_apis) >/dev/null
  sleep "$settle_kill"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo "real cluster done in $(($(date +%s) - t_start)) s, load $load_end; stopping it"
for i in "${!pid[@]}"; do kill "${pid[$i]}" 2>/dev/null || true; done
for _ in $(seq 1 50); do
  left=0
  for i in "${!pid[@]}"; do kill -0 "${pid[$i]}" 2>/dev/null && left=1; done
  [ "$left" = 0 ] && break
  sleep 0.1
done

sim_cmd=("$build/bench_gossip_sim" --nodes "$n" --profile lan --seed "$seed" --crashes "$sim_crashes"
         --broadcasts 0 --restart-crashed 1)
echo "simulator: ${sim_cmd[*]}"
"${sim_cmd[@]}" >"$work/sim.txt"
grep -v '^  crash [0-9]' "$work/sim.txt" | sed 's/^/  sim| /'
echo
"${probe[@]}" report "$work" "$n" "$work/sim.txt"

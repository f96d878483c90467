# shellcheck shell=bash
# Sourced by the bench scripts (bash): a cluster of real `meshdeploy node run` processes, each
# optionally inside a network namespace of its own.
#
#   bench_nodes_init BIN WORK          # cluster keys in WORK/c; nodes' data in WORK/dI, logs WORK/hI.log
#   bench_ns[I]=NAME                   # (optional) run node I, its CLI calls and bench_in I in netns NAME
#   bench_start_node I NODE-ARGS...    # starts node hI in the background (bench_pid[I])
#   bench_wait_ready I [SECONDS]       # waits for its address files (bench_api[I], bench_gaddr[I])
#   bench_in I CMD...                  # runs CMD in node I's namespace (or here)
#   bench_cli I ARGS...                # the meshdeploy CLI against node I's API, as the bench operator
#   bench_wait_alive I N [SECONDS]     # until node I lists N members alive; fails after SECONDS
#   bench_stop_nodes                   # SIGTERM to every node, up to 5 s, then SIGKILL
# Environment: MESHDEPLOY_BENCH_LOG=LEVEL sets the nodes' --log-level (default warn).
# Every wait is bounded in time and count.

# shellcheck disable=SC2034  # bench_gaddr and bench_ns are for the callers
declare -A bench_pid=() bench_api=() bench_gaddr=() bench_ns=()
bench_bin=""
bench_work=""
bench_common=()

bench_nodes_init() {
  bench_bin=$1
  bench_work=$2
  "$bench_bin" cluster init --dir "$bench_work/c" --operator bench >/dev/null
  bench_common=(--keyring "$bench_work/c/keyring.txt" --admin-pub "$bench_work/c/admin.pub"
                --grant "$bench_work/c/bench.grant" --log-level "${MESHDEPLOY_BENCH_LOG:-warn}")
}

bench_in() {
  local i=$1
  shift
  if [ -n "${bench_ns[$i]:-}" ]; then
    ip netns exec "${bench_ns[$i]}" "$@"
  else
    "$@"
  fi
}

bench_start_node() {
  local i=$1
  shift
  local -a wrap=()
  [ -n "${bench_ns[$i]:-}" ] && wrap=(ip netns exec "${bench_ns[$i]}")
  rm -f "$bench_work/d$i/gossip.addr" "$bench_work/d$i/api.addr"
  # Started directly (not through a shell function, which would fork a subshell): `ip netns
  # exec` execs the node, so the pid is the node's.
  "${wrap[@]}" "$bench_bin" node run --name "h$i" --data-dir "$bench_work/d$i" \
    --install-root "$bench_work/r$i" "${bench_common[@]}" "$@" >>"$bench_work/h$i.log" 2>&1 &
  bench_pid[$i]=$!
}

bench_wait_ready() {
  local i=$1 limit=${2:-30} _
  for _ in $(seq 1 $((limit * 10))); do
    if [ -s "$bench_work/d$i/gossip.addr" ] && [ -s "$bench_work/d$i/api.addr" ]; then
      bench_gaddr[$i]=$(cat "$bench_work/d$i/gossip.addr")
      bench_api[$i]=$(cat "$bench_work/d$i/api.addr")
      return 0
    fi
    kill -0 "${bench_pid[$i]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "node h$i did not start within ${limit} s; its log:" >&2
  tail -n 20 "$bench_work/h$i.log" >&2
  return 1
}

bench_cli() {
  local i=$1
  shift
  MESHDEPLOY_API="${bench_api[$i]}" MESHDEPLOY_IDENTITY="$bench_work/c/bench.key" \
    bench_in "$i" "$bench_bin" "$@"
}

bench_wait_alive() {
  local i=$1 n=$2 limit=${3:-30} alive=0 _
  for _ in $(seq 1 $((limit * 5))); do
    alive=$(bench_cli "$i" members -o json 2>/dev/null | grep -c '"alive"' || true)
    [ "$alive" -ge "$n" ] && return 0
    sleep 0.2
  done
  echo "node h$i sees only $alive of $n members alive after ${limit} s" >&2
  return 1
}

bench_stop_nodes() {
  local i left _
  for i in "${!bench_pid[@]}"; do kill "${bench_pid[$i]}" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    left=0
    for i in "${!bench_pid[@]}"; do kill -0 "${bench_pid[$i]}" 2>/dev/null && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  for i in "${!bench_pid[@]}"; do kill -9 "${bench_pid[$i]}" 2>/dev/null || true; done
  bench_pid=()
}

bench_nodes_cpu_ms() {  # user+system CPU of the running nodes so far (their children included), ms
  local sum=0 i f
  for i in "${!bench_pid[@]}"; do
    f=$(cut -d')' -f2 "/proc/${bench_pid[$i]}/stat" 2>/dev/null) || continue
    set -- $f
    sum=$((sum + ${12} + ${13} + ${14} + ${15}))
  done
  echo $((sum * 1000 / $(getconf CLK_TCK)))
}

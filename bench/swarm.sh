#!/usr/bin/env bash
# Peer-to-peer bundle distribution (issue 6) against a central HTTP server, same run, same limits.
#
#   bench/swarm.sh BUILD_DIR N SIZE_MIB RATE_MBIT [RUNS]    (as root)
#     N hosts h0..h(N-1), each a network namespace with a veth to a bridge that lives in a
#     namespace of its own (nothing is added to the caller's network namespace); each host's
#     uplink (the host side of its veth) is limited to RATE_MBIT with `tc tbf`. h0 is the origin.
#     Per run, with a new random (incompressible) SIZE_MIB file in a tar revision (appspec.yml
#     without hooks + the file; S = the tar's size):
#     1. baseline: an HTTP server in h0 (nginx if installed - `scripts/setup --bench` installs
#        nginx-light - else python3 -m http.server) serves the tar; h1..h(N-1) `curl` it at once;
#        per host: time from the common start until its curl has the whole file (the files are
#        compared with the bundle afterwards, untimed);
#     2. meshdeploy: the revision is pushed on h0's node (untimed), then an AllAtOnce deployment
#        to every host is submitted on h0; per host: time from the submit until the bundle is in
#        its revision store (DATA_DIR/revisions/APP/ID.tar, renamed there only after its hash was
#        verified: node/deploy/registry.cc store_bundle): the file's ctime (the rename), looked
#        for every 50 ms.
#     It reports per-host times, median, slowest, the physical limit S/B, the binomial-pipeline
#     limit T* = S/B + (ceil(log2(R+1)) - 1) * c/B with R = N-1 receivers and c = 256 KiB, the
#     central limit R*S/B, the ratios, and the bytes h0 uploaded during the run
#     (meshdeploy_swarm_upload_bytes_total when /metrics has it, the gossip wire bytes out, and
#     the tx bytes of h0's veth, IP and Ethernet headers included).
#
#   bench/swarm.sh BUILD_DIR loopback SIZE_MIB [RUNS]       (as root)
#     One host to one host, unthrottled: two nodes (127.0.0.1, 127.0.0.2) in one network
#     namespace; per run the time until the second node holds a new SIZE_MIB bundle pushed on the
#     first, against `curl` of the same file from the HTTP server on 127.0.0.1; MB/s and ratio.
#
# Environment: MESHDEPLOY_BENCH_TIMEOUT=SECONDS bounds each transfer (default 3 x the central
# limit + 30 s; a run that times out, or whose deployment ends with hosts still missing the
# bundle, reports the hosts that had it and ends the bench with exit 1); keep N x RATE within
# what the machine can move (about 100 MB/s on 2 cores);
# MESHDEPLOY_BENCH_HTTP=python forces python3 -m http.server; MESHDEPLOY_BENCH_LOG=LEVEL the
# nodes' --log-level (warn); MESHDEPLOY_BENCH_KEEP=1 keeps the work dir (logs) and prints its path.
# Every wait is bounded; Ctrl-C, errors and the end remove every namespace and process started.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() {
  sed -n '2,36p' "$0" >&2
  exit 2
}
[ $# -ge 3 ] || usage
build=$(cd "$1" && pwd)
bin="$build/meshdeploy"
if [ "$2" = loopback ]; then
  mode=loopback n=2 size_mib=$3 rate_mbit=0 runs=${4:-1}
else
  [ $# -ge 4 ] || usage
  mode=netns n=$2 size_mib=$3 rate_mbit=$4 runs=${5:-1}
  if [ "$n" -lt 2 ] || [ "$n" -gt 250 ]; then
    echo "N must be 2..250" >&2
    exit 2
  fi
  if [ "$rate_mbit" -le 0 ]; then
    echo "RATE_MBIT must be positive" >&2
    exit 2
  fi
fi
for v in "$n" "$size_mib" "$rate_mbit" "$runs"; do
  [[ "$v" =~ ^[0-9]+$ ]] || usage
done
if [ "$size_mib" -lt 1 ] || [ "$runs" -lt 1 ]; then usage; fi
if [ "$(id -u)" != 0 ]; then
  echo "swarm.sh needs root (network namespaces, tc)" >&2
  exit 2
fi
[ -x "$bin" ] || { echo "no $bin (build first)" >&2; exit 2; }
# shellcheck source=bench/nodes.sh
source "$here/nodes.sh"

piece=$((256 * 1024))
app=swarm
prefix="msb$$"
work=$(mktemp -d /tmp/meshdeploy-swarm-XXXXXX)
namespaces=()
http_pid=""
cleanup() {
  trap - EXIT INT TERM
  local j ns
  for j in $(jobs -p); do kill "$j" 2>/dev/null || true; done
  bench_stop_nodes
  if [ -n "$http_pid" ]; then kill "$http_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  if [ "${MESHDEPLOY_BENCH_KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

add_ns() {
  ip netns add "$1"
  namespaces+=("$1")
  ip -n "$1" link set lo up
}

# --- topology -------------------------------------------------------------------------------
declare -A addr=()
if [ "$mode" = netns ]; then
  sw="$prefix-sw"
  add_ns "$sw"
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  for i in $(seq 0 $((n - 1))); do
    ns="$prefix-h$i"
    add_ns "$ns"
    bench_ns[$i]=$ns
    addr[$i]="10.77.$((i / 250)).$((i % 250 + 1))"
    ip -n "$ns" link add eth0 type veth peer name "p$i" netns "$sw"
    ip -n "$sw" link set "p$i" master br0
    ip -n "$sw" link set "p$i" up
    ip -n "$ns" addr add "${addr[$i]}/16" dev eth0
    ip -n "$ns" link set eth0 up
    # The uplink: egress of the host side. 50 ms of queue at RATE; a burst of 64 KiB.
    tc -n "$ns" qdisc add dev eth0 root tbf rate "${rate_mbit}mbit" burst 64kb latency 50ms
  done
else
  lo_ns="$prefix-lo"
  add_ns "$lo_ns"
  for i in 0 1; do
    bench_ns[$i]=$lo_ns
    addr[$i]="127.0.0.$((i + 1))"
  done
fi
receivers=$(seq 1 $((n - 1)))

# --- nodes ------------------------------------------------------------------------------------
bench_nodes_init "$bin" "$work"
# The API on the namespace's loopback: only the bench (through bench_cli/bench_in) talks to it.
node_args() { echo --bind "${addr[$1]}:0" --api "127.0.0.1:0" --gossip-profile lan --tag role=app; }
# shellcheck disable=SC2046
bench_start_node 0 $(node_args 0)
bench_wait_ready 0
for i in $receivers; do
  # shellcheck disable=SC2046
  bench_start_node "$i" $(node_args "$i") --join "${bench_gaddr[0]}"
done
for i in $receivers; do bench_wait_ready "$i"; done
bench_wait_alive 0 "$n" 60
bench_cli 0 app create "$app" >/dev/null

# --- HTTP server in h0 -----------------------------------------------------------------------
mkdir -p "$work/www"
http_port=8080
http_url="http://${addr[0]}:$http_port/bundle.tar"
if command -v nginx >/dev/null && [ "${MESHDEPLOY_BENCH_HTTP:-nginx}" != python ]; then
  http_kind="nginx $(nginx -v 2>&1 | sed 's|.*/||') (sendfile, 1 worker)"
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  types { application/octet-stream tar; }
  server {
    listen ${addr[0]}:$http_port;
    root $work/www;
  }
}
EOF
  ip netns exec "${bench_ns[0]}" nginx -e "$work/nginx/error.log" -p "$work/nginx" -c "$work/nginx/nginx.conf" \
    >"$work/nginx/out.log" 2>&1 &
  http_pid=$!
else
  http_kind="python3 -m http.server ($(python3 --version 2>&1))"
  ip netns exec "${bench_ns[0]}" python3 -m http.server --bind "${addr[0]}" --directory "$work/www" "$http_port" \
    >"$work/http.log" 2>&1 &
  http_pid=$!
fi
echo probe >"$work/www/probe"
up=0
for _ in $(seq 1 100); do
  if bench_in 0 curl -sf --max-time 2 -o /dev/null "http://${addr[0]}:$http_port/probe"; then
    up=1
    break
  fi
  sleep 0.1
done
[ "$up" = 1 ] || { echo "the HTTP server ($http_kind) did not answer within 10 s" >&2; exit 1; }

# --- helpers for a run ---------------------------------------------------------------------------
h0_metric() {  # h0_metric PREFIX: sum of h0's /metrics samples whose name{labels} start with PREFIX
  bench_in 0 curl -s --max-time 5 "http://${bench_api[0]}/metrics" |
    awk -v p="$1" '!/^#/ && index($1, p) == 1 { s += $2; f = 1 } END { if (f) printf "%.0f\n", s; else print "-" }'
}
h0_tx() {  # bytes sent by h0's veth (netns mode) or by the namespace's loopback (loopback mode)
  local dev=eth0
  [ "$mode" = loopback ] && dev=lo
  bench_in 0 cat "/sys/class/net/$dev/statistics/tx_bytes"
}
dep_status() {  # dep_status ID: the deployment's overall status, as node h0 sees it
  bench_cli 0 status "$1" -o json 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("status", ""))' 2>/dev/null || true
}
dep_ended() { case "$(dep_status "$1")" in Succeeded | Failed | Stopped) return 0 ;; esac; return 1; }
# wait_files TIMEOUT T0 OUT DEPLOYMENT FILE...: polls every 50 ms until every FILE exists;
# appends "HOST SECONDS" to OUT as each first appears (FILE k belongs to host h(k+1)). Gives up
# TIMEOUT seconds after T0 (at most 20 polls a second), or (if DEPLOYMENT is not "-") once that deployment has ended (checked
# every 2 s) and a last look found files still missing: hosts that failed never get them.
wait_files() {
  local limit=$1 t0=$2 out=$3 dep=$4
  shift 4
  local -a files=("$@") seen=()
  local left=${#files[@]} k t c poll ended=0 deadline=$((${t0%.*} + limit))
  for poll in $(seq 1 $((limit * 20 + 1))); do
    t=$EPOCHREALTIME
    for k in "${!files[@]}"; do
      if [ -z "${seen[$k]:-}" ] && [ -e "${files[$k]}" ]; then
        seen[$k]=1
        left=$((left - 1))
        # The file's ctime is when it was renamed into place: exact even when this loop was
        # held up (a slow status call while 16 nodes busy both cores), which the poll time is not.
        c=$(stat -c %.9Z "${files[$k]}" 2>/dev/null || echo "$t")
        echo "$((k + 1)) $(awk -v a="$t0" -v b="$c" 'BEGIN { printf "%.3f", b - a }')" >>"$out"
      fi
    done
    [ "$left" = 0 ] && return 0
    [ "$ended" = 1 ] && return 1
    [ "${t%.*}" -ge "$deadline" ] && return 1
    if [ "$dep" != - ] && [ $((poll % 40)) = 0 ] && dep_ended "$dep"; then
      ended=1  # one more look at the files, then give up
      echo "  (deployment $dep ended ($(dep_status "$dep")) with $left hosts still without the bundle)"
      continue
    fi
    sleep 0.05
  done
  return 1
}

echo "swarm: mode=$mode N=$n size=${size_mib} MiB rate=${rate_mbit} Mbit/s runs=$runs http=$http_kind"
echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg) at start; binary $bin"
failed=0
for r in $(seq 1 "$runs"); do
  # A new revision: appspec without hooks and SIZE_MIB random bytes, as an uncompressed tar.
  rm -rf "$work/rev" && mkdir -p "$work/rev"
  printf 'version: 0.0\nos: linux\n' >"$work/rev/appspec.yml"
  head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/rev/payload.bin"
  tar -cf "$work/bundle.tar" -C "$work/rev" appspec.yml payload.bin
  size=$(stat -c %s "$work/bundle.tar")
  rev=$(bench_cli 0 push --app "$app" --source "$work/bundle.tar" | head -n 1)
  [ -f "$work/d0/revisions/$app/$rev.tar" ] || { echo "push did not store $rev on h0" >&2; exit 1; }
  ln -f "$work/bundle.tar" "$work/www/bundle.tar"
  limit=${MESHDEPLOY_BENCH_TIMEOUT:-$(awk -v s="$size" -v n="$n" -v b="$rate_mbit" \
    'BEGIN { if (b > 0) printf "%d", 3 * (n - 1) * s * 8 / (b * 1e6) + 30; else print 120 }')}

  # 1. baseline: every receiver curls the bundle from h0 at once; a host's time is when its
  # curl exits (the whole file written).
  rm -f "$work/curl.times"
  tx0=$(h0_tx)
  declare -A curl_host=()
  t0=$EPOCHREALTIME
  for i in $receivers; do
    rm -rf "$work/get$i" && mkdir -p "$work/get$i"
    ip netns exec "${bench_ns[$i]}" curl -sS --max-time "$limit" -o "$work/get$i/bundle.tar" \
      "$http_url" &
    curl_host[$!]=$i
  done
  for _ in $receivers; do
    rc=0
    wait -n -p done_pid "${!curl_host[@]}" || rc=$?
    t=$EPOCHREALTIME
    if [ "$rc" = 0 ]; then
      echo "${curl_host[$done_pid]} $(awk -v a="$t0" -v b="$t" 'BEGIN { printf "%.3f", b - a }')" \
        >>"$work/curl.times"
    else
      echo "  (baseline: curl on h${curl_host[$done_pid]} failed with $rc)"
      failed=1
    fi
    unset "curl_host[$done_pid]"
  done
  curl_tx=$(($(h0_tx) - tx0))
  bad=0
  for i in $receivers; do
    cmp -s "$work/get$i/bundle.tar" "$work/bundle.tar" || bad=$((bad + 1))
    rm -rf "$work/get$i"
  done

  # 2. meshdeploy: an AllAtOnce deployment of the pushed revision to every host.
  bench_cli 0 group create --app "$app" --name "g$r" --tag role=app --config AllAtOnce >/dev/null
  rm -f "$work/mesh.times"
  files=()
  for i in $receivers; do files+=("$work/d$i/revisions/$app/$rev.tar"); done
  up0=$(h0_metric meshdeploy_swarm_upload_bytes_total)
  wire0=$(h0_metric 'meshdeploy_gossip_wire_bytes_total{direction="out"}')
  tx0=$(h0_tx)
  c0=$(bench_nodes_cpu_ms)
  t0=$EPOCHREALTIME
  dep=$(bench_cli 0 deploy --app "$app" --group "g$r" --revision "$rev" | head -n 1)
  wait_files "$limit" "$t0" "$work/mesh.times" "$dep" "${files[@]}" || {
    echo "  (meshdeploy: not every host held the bundle; time limit $limit s)"
    failed=1
  }
  cpu=$(($(bench_nodes_cpu_ms) - c0))
  mesh_tx=$(($(h0_tx) - tx0))
  up1=$(h0_metric meshdeploy_swarm_upload_bytes_total)
  wire1=$(h0_metric 'meshdeploy_gossip_wire_bytes_total{direction="out"}')
  python3 - "$mode" "$n" "$size" "$rate_mbit" "$piece" "$work/curl.times" "$work/mesh.times" \
    "$bad" "$curl_tx" "$mesh_tx" "$up0" "$up1" "$wire0" "$wire1" "$cpu" "$r" "$dep" <<'EOF'
import math, statistics, sys
(mode, n, size, rate, piece, curl_f, mesh_f, bad, curl_tx, mesh_tx,
 up0, up1, wire0, wire1, cpu, run, dep) = sys.argv[1:]
n, size, rate, piece = int(n), int(size), float(rate), int(piece)
receivers = n - 1
def host_times(path):  # {host number: seconds}
    try:
        return {int(l.split()[0]): float(l.split()[1]) for l in open(path) if l.strip()}
    except FileNotFoundError:
        return {}
def per_host(d):
    line = " ".join(f"h{h}:{t:.2f}" for h, t in sorted(d.items(), key=lambda x: x[1]))
    missing = [f"h{h}" for h in range(1, receivers + 1) if h not in d]
    return line + (f"; never: {' '.join(missing)}" if missing else "")
curl_h, mesh_h = host_times(curl_f), host_times(mesh_f)
times = lambda d: sorted(d.values())
def delta(a, b):
    return None if "-" in (a, b) else int(b) - int(a)
curl, mesh = times(curl_h), times(mesh_h)
mib = 1024 * 1024
def summary(t):
    if not t:
        return "no host done"
    s = f"{len(t)}/{receivers} hosts, median {statistics.median(t):.2f} s, slowest {t[-1]:.2f} s"
    if len(t) < receivers:
        s += " (INCOMPLETE)"
    return s
print(f"run {run}: S = {size} B ({size / mib:.2f} MiB), deployment {dep}")
tx_name = "namespace lo tx (both nodes)" if mode == "loopback" else "h0 veth tx"
print(f"  baseline curl: {summary(curl)}; {bad} bad files; {tx_name} {int(curl_tx) / size:.2f} x S")
print(f"    per host: {per_host(curl_h)}")
print(f"  meshdeploy:    {summary(mesh)}; node CPU {int(cpu) / 1000:.1f} s")
print(f"    per host: {per_host(mesh_h)}")
up, wire = delta(up0, up1), delta(wire0, wire1)
print("  h0 uploaded during meshdeploy: "
      + (f"swarm {up} B = {up / size:.2f} x S; " if up is not None else "swarm counter absent; ")
      + (f"gossip wire out {wire} B = {wire / size:.2f} x S; " if wire is not None else "")
      + f"{tx_name} {int(mesh_tx)} B = {int(mesh_tx) / size:.2f} x S")
if mode == "loopback":
    if curl and mesh:
        c, m = size / curl[-1] / 1e6, size / mesh[-1] / 1e6
        print(f"  throughput: curl {c:.1f} MB/s, meshdeploy {m:.1f} MB/s, ratio {m / c:.2f} "
              f"(target >= 0.40)")
    sys.exit(0)
b = rate * 1e6 / 8
s_over_b = size / b
t_star = s_over_b + (math.ceil(math.log2(receivers + 1)) - 1) * piece / b
central = receivers * size / b
print(f"  limits: S/B {s_over_b:.2f} s, T* {t_star:.2f} s (c = {piece // 1024} KiB), "
      f"central {central:.2f} s")
if curl:
    print(f"  baseline slowest / central limit {curl[-1] / central:.2f}")
if mesh and len(mesh) == receivers:
    med, slow = statistics.median(mesh), mesh[-1]
    print(f"  meshdeploy slowest / T* {slow / t_star:.2f} (target <= 1.25), "
          f"median / T* {med / t_star:.2f} (target <= 1.1)")
    if curl and len(curl) == receivers:
        print(f"  baseline slowest / meshdeploy slowest {curl[-1] / slow:.2f} (target >= 10)")
EOF
  [ "$failed" = 0 ] || break
  # Let the deployment finish before the next run (no hooks: it ends once every host installed).
  for _ in $(seq 1 100); do
    dep_ended "$dep" && break
    sleep 0.2
  done
done
echo "done, load $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$failed"

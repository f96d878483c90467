#!/usr/bin/env bash
# End-to-end time of a no-op deployment (examples/noop: every hook is `true`) on a mesh of N
# real `meshdeploy node run` processes on loopback, for AllAtOnce and OneAtATime, measured
# from the CLI's submit to the final status (deploy --wait), each run REPEAT times on a fresh
# group. Per-host control overhead for OneAtATime = time / N (the hooks themselves take a few
# ms per host, included). Usage: bench/mesh_deploy.sh BUILD_DIR [N] [REPEAT]
set -euo pipefail
bin="$1/meshdeploy"
n="${2:-8}"
repeat="${3:-3}"
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/meshdeploy-bench-XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
"$bin" cluster init --dir "$work/c" --operator bench >/dev/null
common=(--keyring "$work/c/keyring.txt" --admin-pub "$work/c/admin.pub" --grant "$work/c/bench.grant"
        --gossip-profile local --bind 127.0.0.1:0 --api 127.0.0.1:0 --tag role=app --log-level warn)
for i in $(seq 1 "$n"); do
  join=()
  [ "$i" -gt 1 ] && join=(--join "$(cat "$work/d1/gossip.addr")")
  "$bin" node run --name "h$i" --data-dir "$work/d$i" --install-root "$work/r$i" "${common[@]}" "${join[@]}" \
    >"$work/h$i.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do [ -s "$work/d$i/gossip.addr" ] && [ -s "$work/d$i/api.addr" ] && break; sleep 0.05; done
done
export MESHDEPLOY_API=$(cat "$work/d1/api.addr") MESHDEPLOY_IDENTITY="$work/c/bench.key"
for _ in $(seq 1 200); do
  [ "$("$bin" members -o json | grep -c '"alive"')" -ge "$n" ] && break
  sleep 0.05
done
"$bin" app create noop >/dev/null
rev=$("$bin" push --app noop --source "$repo/examples/noop" | head -n 1)
sleep 0.5
echo "nodes=$n repeat=$repeat machine=$(nproc) cores, $(uname -r)"
for config in AllAtOnce OneAtATime; do
  for r in $(seq 1 "$repeat"); do
    g="$config-$r"
    "$bin" group create --app noop --name "$g" --tag role=app --config "$config" >/dev/null
    t0=$(date +%s%N)
    "$bin" deploy --app noop --group "$g" --revision "$rev" --wait >/dev/null 2>&1 || echo "  ($g did not succeed)"
    t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    echo "$config run $r: ${ms} ms total, $(( ms / n )) ms per host"
  done
done

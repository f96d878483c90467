#!/bin/bash
# Consecutive chaos runs (issue 7's target: 50 consecutive 10-minute runs with zero violations).
#
#   sudo tests/chaos/series.sh BUILD_DIR [--variant long] [--first-seed 100] [--count 50]
#                              [--results FILE] [--keep-going]
#
# Runs tests/chaos/chaos.py once per seed FIRST_SEED .. FIRST_SEED+COUNT-1, one after another,
# with a copy of BUILD_DIR/meshdeploy taken at the start (rebuilding meanwhile changes nothing
# mid-series). Appends one line per run to the results file (start time, load, seed, the run's
# verdict line, which names its kept log dir on failure) and stops at the first failing run unless
# --keep-going. Touch FILE.stop to end the series after the current run. Exit 0 when every run
# passed, 1 otherwise, 77 when the harness is skipped (not root, no ip).
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: series.sh BUILD_DIR [--variant V] [--first-seed N] [--count N] [--results FILE] [--keep-going]}
shift
variant=long first=100 count=50 results=chaos-series.txt keep_going=0
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant=$2; shift 2 ;;
    --first-seed) first=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --keep-going) keep_going=1; shift ;;
    *) echo "series.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$build/meshdeploy" ] || { echo "series.sh: no $build/meshdeploy (build first)" >&2; exit 2; }
bin=$(mktemp -d /tmp/meshdeploy-series-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
cp "$build/meshdeploy" "$bin/meshdeploy"
commit=$(git -C "$here" log -1 --format=%h 2>/dev/null || echo unknown)
echo "# $(date -u +%FT%TZ) series: variant=$variant seeds $first..$((first + count - 1)) commit $commit" >> "$results"
passed=0
for ((seed = first; seed < first + count; seed++)); do
  if [ -e "$results.stop" ]; then
    echo "# stopped by $results.stop after $passed passing run(s)" >> "$results"
    break
  fi
  start="$(date -u +%H:%M) load $(cut -d' ' -f1 /proc/loadavg)"
  python3 "$here/chaos.py" --build "$bin" --variant "$variant" --seed "$seed" > "$bin/run.log" 2>&1
  rc=$?
  verdict=$(grep '^chaos:' "$bin/run.log")
  echo "$start seed $seed: ${verdict:-no verdict (exit $rc)}" >> "$results"
  [ "$rc" = 77 ] && exit 77
  if [ "$rc" = 0 ]; then
    passed=$((passed + 1))
  elif [ "$keep_going" = 0 ]; then
    echo "# $passed consecutive passing run(s) before seed $seed failed" >> "$results"
    exit 1
  fi
done
echo "# $(date -u +%FT%TZ) $passed of $count run(s) passed" >> "$results"
[ "$passed" = "$count" ]

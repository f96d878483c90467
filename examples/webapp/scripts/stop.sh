#!/bin/sh
# ApplicationStop: runs from the previously deployed revision.
. "$(dirname "$0")/common.sh"
if [ -f "$run_dir/webapp.pid" ]; then
  pid=$(cat "$run_dir/webapp.pid")
  if kill "$pid" 2>/dev/null; then echo "stopped webapp (pid $pid)"; fi
  rm -f "$run_dir/webapp.pid" "$run_dir/heartbeat"
else
  echo "webapp was not running"
fi

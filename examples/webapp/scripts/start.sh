#!/bin/sh
# ApplicationStart: starts the "service" in the background WITHOUT redirecting
# its output -- the pattern that hangs the CodeDeploy agent. meshdeploy
# finishes the event when this script exits.
. "$(dirname "$0")/common.sh"
mkdir -p "$run_dir"
(
  # The service: a heartbeat loop that ends by itself after 10 minutes.
  i=0
  while [ $i -lt 600 ]; do date +%s > "$run_dir/heartbeat"; i=$((i + 1)); sleep 1; done
) &
echo $! > "$run_dir/webapp.pid"
echo "started webapp (pid $!)"

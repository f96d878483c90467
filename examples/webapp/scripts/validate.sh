#!/bin/sh
# ValidateService: the service must be alive and serving the new content.
. "$(dirname "$0")/common.sh"
i=0
while [ ! -s "$run_dir/heartbeat" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$(cat "$run_dir/webapp.pid")" 2>/dev/null || { echo "webapp is not running" >&2; exit 1; }
grep -q "Hello from meshdeploy" "$app_dir/site/index.html" || { echo "wrong content" >&2; exit 1; }
echo "webapp is healthy"

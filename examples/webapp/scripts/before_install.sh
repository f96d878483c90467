#!/bin/sh
. "$(dirname "$0")/common.sh"
mkdir -p "$run_dir"
echo "preparing $app_dir for revision $MESHDEPLOY_REVISION"

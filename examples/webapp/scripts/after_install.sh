#!/bin/sh
. "$(dirname "$0")/common.sh"
test -f "$app_dir/site/index.html" || { echo "index.html was not installed" >&2; exit 1; }
echo "installed $(find "$app_dir/site" -type f | wc -l) site files"

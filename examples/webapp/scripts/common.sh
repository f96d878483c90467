# Shared by the hook scripts: where the app lives on this host.
root="${MESHDEPLOY_INSTALL_ROOT:-/}"
root="${root%/}"
app_dir="$root/srv/webapp"
run_dir="$root/srv/webapp-run"

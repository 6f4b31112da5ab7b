#!/bin/sh
# Runs the Nagios check_disk plugin on one path. The agent passes the plugin's arguments
# both as `--name value` pairs and as PROPHASIS_ARG_<NAME> environment variables; the
# environment is read here because it needs no option parsing in sh.
#   path      mount point or path (default /)
#   warning   free space below which to warn, e.g. 20% or 500 (MiB)  (default 20%)
#   critical  free space below which it is critical                  (default 10%)
# check_disk prints "DISK OK - free space: / 71425MiB (76% ...)| /=...B;warn;crit;0;size"
# and exits 0-3; the agent turns that into value + message (mode "nagios").
set -u

# Arguments given on the command line win over the environment.
while [ $# -ge 2 ]; do
    case "$1" in
        --path) PROPHASIS_ARG_PATH=$2 ;;
        --warning) PROPHASIS_ARG_WARNING=$2 ;;
        --critical) PROPHASIS_ARG_CRITICAL=$2 ;;
    esac
    shift 2
done

CHECK_DISK=${PROPHASIS_CHECK_DISK:-/usr/lib/nagios/plugins/check_disk}
if [ ! -x "$CHECK_DISK" ]; then
    echo "UNKNOWN - $CHECK_DISK not found: install the Debian/Ubuntu package monitoring-plugins-basic"
    exit 3
fi

exec "$CHECK_DISK" \
    -w "${PROPHASIS_ARG_WARNING:-20%}" \
    -c "${PROPHASIS_ARG_CRITICAL:-10%}" \
    -p "${PROPHASIS_ARG_PATH:-/}"

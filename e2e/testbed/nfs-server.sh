#!/usr/bin/env bash
# Starts or stops the test bed's NFS-Ganesha (rpcbind keeps running). The e2e suite uses it, through
# E2E_NFS_STOP_CMD / E2E_NFS_START_CMD, to take the NFS server away while a claim arrives.
#   nfs-server.sh start|stop|status
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/lib.sh
source "$here/lib.sh"

CONFIG="$TESTBED_DIR/ganesha/ganesha.conf"

nfs_answers() { rpcinfo -t 127.0.0.1 nfs 3 && rpcinfo -t 127.0.0.1 mountd 3; }

start() {
	[ -f "$CONFIG" ] || die "$CONFIG is missing: run e2e/testbed/up.sh first"
	# NIV_EVENT keeps the log small; the CRIT lines about dbus and krb5 at startup are harmless.
	start_process ganesha ganesha.nfsd -F -f "$CONFIG" -L "$LOG_DIR/ganesha.nfsd.log" \
		-p "$TESTBED_DIR/ganesha/ganesha.pid" -N NIV_EVENT
	WAIT_PROCESS=ganesha wait_until "Ganesha's nfs and mountd on the portmapper" 60 nfs_answers
}

stop() {
	stop_process ganesha
	# Ganesha unregisters from the portmapper on SIGTERM; make sure nothing stale answers.
	if rpcinfo -t 127.0.0.1 nfs 3 >/dev/null 2>&1; then
		die "something still answers NFS on 127.0.0.1 after stopping Ganesha"
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) nfs_answers ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac

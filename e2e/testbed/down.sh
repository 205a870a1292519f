#!/usr/bin/env bash
# Stops every test bed process by its recorded PID (the demo provisioner too), newest first, and
# checks that none is left. Idempotent; the data under $TESTBED_DIR stays for post-mortems
# (DELETE_DATA=1 removes it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/lib.sh
source "$here/lib.sh"

COMPONENTS=(node-vm demo-provisioner kwok kube-scheduler kube-controller-manager kube-apiserver etcd ganesha rpcbind)

main() {
	local failed=()
	local name
	for name in "${COMPONENTS[@]}"; do
		stop_process "$name" || failed+=("$name")
	done
	# Anything else that up.sh or a test recorded (the same PID files, other names).
	local pidfile
	for pidfile in "$PID_DIR"/*.pid; do
		[ -e "$pidfile" ] || continue
		name="$(basename "$pidfile" .pid)"
		stop_process "$name" || failed+=("$name")
	done
	if [ ${#failed[@]} -ne 0 ]; then
		die "still running: ${failed[*]}"
	fi
	if [ "${DELETE_DATA:-0}" = 1 ]; then
		rm -rf "$TESTBED_DIR"
		log "removed $TESTBED_DIR"
	fi
	log "test bed down: no test bed process left"
}

main "$@"

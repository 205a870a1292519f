#!/usr/bin/env bash
# Stops and starts the test bed's kube-apiserver alone, with the arguments it was running with,
# for the fault suite (API server restarted during a burst). Everything else keeps running.
#   apiserver.sh stop     records the running apiserver's argv, then kills it (SIGKILL: a crash;
#                         its graceful SIGTERM shutdown takes ~15 s here, longer than a Lease's
#                         renew deadline, which would turn every restart into a lost Lease)
#   apiserver.sh start    starts it again with the recorded argv and waits for /readyz
#   apiserver.sh restart  both
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/lib.sh
source "$here/lib.sh"

ARGS_FILE="$TESTBED_DIR/kube-apiserver.argv"

stop() {
	is_running kube-apiserver || die "kube-apiserver is not running (start the bed with up.sh)"
	# The exact argv, NUL-separated, as up.sh started it.
	cp "/proc/$(pid_of kube-apiserver)/cmdline" "$ARGS_FILE.tmp"
	mv "$ARGS_FILE.tmp" "$ARGS_FILE"
	local pid deadline=$((SECONDS + 10))
	pid="$(pid_of kube-apiserver)"
	kill -KILL "$pid"
	# Gone or a zombie: only then are its sockets closed (its cmdline empties earlier, while it
	# still holds the port).
	while [ -e "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || die "kube-apiserver (pid $pid) survived SIGKILL"
		sleep 0.1
	done
	rm -f "$PID_DIR/kube-apiserver.pid" "$PID_DIR/kube-apiserver.cmd"
	log "killed kube-apiserver (pid $pid)"
}

start() {
	[ -s "$ARGS_FILE" ] || die "$ARGS_FILE is missing: run '$0 stop' first"
	local args=() port=16443 i
	mapfile -d '' args <"$ARGS_FILE"
	for ((i = 0; i < ${#args[@]} - 1; i++)); do
		[ "${args[$i]}" = --secure-port ] && port="${args[$((i + 1))]}"
	done
	start_process kube-apiserver "${args[@]}"
	WAIT_PROCESS=kube-apiserver wait_until "kube-apiserver /readyz" 120 \
		curl -sf --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/admin.crt" --key "$PKI_DIR/admin.key" \
		"https://127.0.0.1:$port/readyz"
}

case "${1:-}" in
stop) stop ;;
start) start ;;
restart)
	stop
	start
	;;
*)
	echo "usage: $0 stop|start|restart" >&2
	exit 2
	;;
esac

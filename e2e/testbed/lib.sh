# Helpers shared by the test bed scripts (sourced, not run).
# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this file

TESTBED_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/versions.sh
source "$TESTBED_SCRIPTS/versions.sh"

PKI_DIR="$TESTBED_DIR/pki"
PID_DIR="$TESTBED_DIR/pids"
LOG_DIR="$TESTBED_DIR/logs"

log() { printf '[testbed %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() {
	printf '[testbed %s] ERROR: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
	exit 1
}

# pid_of NAME: the recorded PID of a component, empty when there is none.
pid_of() {
	local file="$PID_DIR/$1.pid"
	[ -f "$file" ] && cat "$file"
	return 0
}

# is_running NAME: the recorded process is alive and still runs the binary it was started with
# (guards against a recycled PID after a reboot or a crash).
is_running() {
	local name="$1" pid
	pid="$(pid_of "$name")"
	[ -n "$pid" ] || return 1
	[ -r "/proc/$pid/cmdline" ] || return 1
	local expected
	expected="$(cat "$PID_DIR/$name.cmd" 2>/dev/null || true)"
	[ -n "$expected" ] || return 1
	# A zombie has an empty cmdline; treat it as gone.
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$expected"
}

# start_process NAME BINARY ARGS...: starts BINARY in its own session (so an interrupted make or
# test run does not take the bed down with it), output to $LOG_DIR/NAME.log, PID to $PID_DIR/NAME.pid.
# PROCESS_MATCH overrides the string its command line must contain (default BINARY), for commands
# that exec another one (env -i ...).
start_process() {
	local name="$1"
	shift
	if is_running "$name"; then
		log "$name already running (pid $(pid_of "$name"))"
		return 0
	fi
	mkdir -p "$PID_DIR" "$LOG_DIR"
	printf '%s' "${PROCESS_MATCH:-$1}" >"$PID_DIR/$name.cmd"
	printf '\n===== %s started %s: %s\n' "$name" "$(date -u +%FT%TZ)" "$*" >>"$LOG_DIR/$name.log"
	setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$PID_DIR/$name.pid"
	# Until it execs the binary the child is a copy of this shell, whose command line is_running
	# does not recognise: wait for the exec (or the child's end), so that no check made after this
	# returns can mistake a process still starting for one that died.
	local deadline=$((SECONDS + 10))
	while ! is_running "$name" && kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
		sleep 0.02
	done
	log "started $name (pid $pid, log $LOG_DIR/$name.log)"
}

# stop_process NAME: SIGTERM, wait up to 15 s, then SIGKILL; returns non-zero if it survives.
stop_process() {
	local name="$1" pid
	pid="$(pid_of "$name")"
	if [ -z "$pid" ]; then
		return 0
	fi
	if is_running "$name"; then
		kill -TERM "$pid" 2>/dev/null || true
		local deadline=$((SECONDS + 15))
		while is_running "$name" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
		if is_running "$name"; then
			log "$name (pid $pid) ignored SIGTERM for 15 s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			deadline=$((SECONDS + 5))
			while is_running "$name" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
		fi
		if is_running "$name"; then
			printf '[testbed] ERROR: %s (pid %s) is still running\n' "$name" "$pid" >&2
			return 1
		fi
		log "stopped $name (pid $pid)"
	fi
	rm -f "$PID_DIR/$name.pid" "$PID_DIR/$name.cmd"
}

# wait_until DESCRIPTION TIMEOUT_SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds.
# When a component named by WAIT_PROCESS dies meanwhile, fails at once and shows its log.
wait_until() {
	local what="$1" timeout="$2"
	shift 2
	local deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		if [ -n "${WAIT_PROCESS:-}" ] && ! is_running "$WAIT_PROCESS"; then
			tail -n 40 "$LOG_DIR/$WAIT_PROCESS.log" >&2 || true
			die "$WAIT_PROCESS exited while waiting for $what (log: $LOG_DIR/$WAIT_PROCESS.log)"
		fi
		if [ $SECONDS -ge $deadline ]; then
			[ -n "${WAIT_PROCESS:-}" ] && tail -n 40 "$LOG_DIR/$WAIT_PROCESS.log" >&2
			die "timed out after ${timeout}s waiting for $what"
		fi
		sleep 0.2
	done
}

# provisioner_kubeconfig DIR: writes DIR/provisioner.kubeconfig, with a token of the ServiceAccount
# deploy/rbac.yaml creates (so the provisioner has exactly the permissions it ships with), and
# prints its path. Needs KUBECONFIG (admin), KUBE_DIR and PKI_DIR.
provisioner_kubeconfig() {
	local file="$1/provisioner.kubeconfig" token server
	local -a kc=("$KUBE_DIR/kubectl" --kubeconfig "$KUBECONFIG")
	token="$("${kc[@]}" create token nfs-client-provisioner -n default --duration 24h)"
	server="$("${kc[@]}" config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
	cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: $server
    certificate-authority: $PKI_DIR/ca.crt
users:
- name: nfs-client-provisioner
  user:
    token: $token
contexts:
- name: provisioner
  context: {cluster: testbed, user: nfs-client-provisioner, namespace: default}
current-context: provisioner
KUBECONFIG
	chmod 600 "$file"
	echo "$file"
}

# start_provisioner NAME KUBECONFIG METRICS_ADDRESS: runs the binary (E2E_PROVISIONER_BIN) as bed
# process NAME with only the environment a user of nfs-subdir-external-provisioner sets, and
# waits until it is ready and holds the anchor's leader Lease. The e2e suites' counterpart is
# framework.StartProvisioner.
start_provisioner() {
	local name="$1" kubeconfig="$2" metrics="$3" log_file="$LOG_DIR/$1.log"
	if is_running "$name"; then
		log "$name already running (pid $(pid_of "$name"))"
		return 0
	fi
	local first_line=1
	[ -f "$log_file" ] && first_line=$(($(wc -l <"$log_file") + 1))
	PROCESS_MATCH="$E2E_PROVISIONER_BIN" start_process "$name" env -i \
		KUBECONFIG="$kubeconfig" \
		NFS_SERVER="$E2E_NFS_SERVER" \
		NFS_PATH="$E2E_NFS_PATH" \
		PROVISIONER_NAME=k8s-sigs.io/nfs-subdir-external-provisioner \
		POD_NAMESPACE=default \
		"$E2E_PROVISIONER_BIN" --metrics-address "$metrics"
	WAIT_PROCESS="$name" wait_until "the provisioner's /readyz" 60 curl -sf "http://$metrics/readyz"
	# Another provisioner of the same name (an e2e run) would hold the Lease and do the work.
	WAIT_PROCESS="$name" wait_until "the provisioner to take the leader Lease default/k8s-sigs.io-nfs-subdir-external-provisioner (is an e2e run using this test bed?)" 60 \
		log_says_since "$log_file" "$first_line" "successfully acquired lease"
}

# log_says_since FILE LINE TEXT: FILE, from line LINE on, contains TEXT (in any case).
log_says_since() { tail -n "+$2" "$1" | grep -qi "$3"; }

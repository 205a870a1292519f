#!/usr/bin/env bash
# Starts the e2e test bed on loopback, idempotently (a component already running is left alone):
#   etcd, kube-apiserver (RBAC), kube-controller-manager, kube-scheduler, kwok with one fake Node,
#   rpcbind and NFS-Ganesha with two NFSv3 exports (no_root_squash and root_squash).
# Writes $TESTBED_DIR/env for the e2e suite. Stop everything with down.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/lib.sh
source "$here/lib.sh"
# shellcheck source=e2e/testbed/pki.sh
source "$here/pki.sh"

REPO_ROOT="$(cd "$here/../.." && pwd)"
ETCD_PORT="${ETCD_PORT:-23790}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-23800}"
APISERVER_PORT="${APISERVER_PORT:-16443}"
KCM_PORT="${KCM_PORT:-10257}"
SCHEDULER_PORT="${SCHEDULER_PORT:-10259}"
KWOK_PORT="${KWOK_PORT:-10247}"
NFS_PORT="${NFS_PORT:-2049}"
MOUNT_PORT="${MOUNT_PORT:-20048}"
# The controller-manager's own API rate limit caps how fast PVs are bound; raised so that the
# provisioner, not the binder, is what a benchmark measures.
KCM_KUBE_API_QPS="${KCM_KUBE_API_QPS:-500}"
KCM_KUBE_API_BURST="${KCM_KUBE_API_BURST:-1000}"
SERVICE_CIDR="10.0.0.0/24"
SERVICE_IP="10.0.0.1"
APISERVER_URL="https://127.0.0.1:$APISERVER_PORT"
FAKE_NODE="${FAKE_NODE:-kwok-node-0}"
# Owner of the root_squash export's root: root is squashed there, so a class must name this uid.
SQUASH_EXPORT_UID="${SQUASH_EXPORT_UID:-2000}"
SQUASH_EXPORT_GID="${SQUASH_EXPORT_GID:-2000}"

EXPORT_DIR="$TESTBED_DIR/exports/rw"
SQUASH_EXPORT_DIR="$TESTBED_DIR/exports/squash"
V4_EXPORT_DIR="$TESTBED_DIR/exports/v4only" # served over NFSv4.1 only, as /v4only
V4_EXPORT_PSEUDO=/v4only
ADMIN_KUBECONFIG="$TESTBED_DIR/admin.kubeconfig"
KUBECTL="$KUBE_DIR/kubectl"

check_binaries() {
	local bin
	for bin in "$ETCD_DIR/etcd" "$KUBE_DIR/kube-apiserver" "$KUBE_DIR/kube-controller-manager" \
		"$KUBE_DIR/kube-scheduler" "$KUBECTL" "$KWOK_DIR/kwok"; do
		[ -x "$bin" ] || die "$bin is missing: run e2e/testbed/build.sh (make testbed-build) first"
	done
	local cmd
	for cmd in rpcbind rpcinfo ganesha.nfsd openssl curl; do
		command -v "$cmd" >/dev/null || die "$cmd is missing: run e2e/testbed/build.sh, it installs the Debian packages"
	done
}

kubectl_admin() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

start_etcd() {
	mkdir -p "$TESTBED_DIR/etcd"
	chmod 700 "$TESTBED_DIR/etcd"
	start_process etcd "$ETCD_DIR/etcd" \
		--name testbed \
		--data-dir "$TESTBED_DIR/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "testbed=http://127.0.0.1:$ETCD_PEER_PORT" \
		--unsafe-no-fsync \
		--log-level warn
	WAIT_PROCESS=etcd wait_until "etcd /health" 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health"
}

start_apiserver() {
	start_process kube-apiserver "$KUBE_DIR/kube-apiserver" \
		--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--bind-address 127.0.0.1 \
		--advertise-address 127.0.0.1 \
		--secure-port "$APISERVER_PORT" \
		--tls-cert-file "$PKI_DIR/apiserver.crt" \
		--tls-private-key-file "$PKI_DIR/apiserver.key" \
		--client-ca-file "$PKI_DIR/ca.crt" \
		--authorization-mode RBAC \
		--endpoint-reconciler-type none \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$PKI_DIR/sa.pub" \
		--service-account-signing-key-file "$PKI_DIR/sa.key" \
		--api-audiences https://kubernetes.default.svc.cluster.local \
		--allow-privileged \
		--cert-dir "$PKI_DIR/apiserver-generated"
	WAIT_PROCESS=kube-apiserver wait_until "kube-apiserver /readyz" 120 \
		curl -sf --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/admin.crt" --key "$PKI_DIR/admin.key" \
		"$APISERVER_URL/readyz"
}

# --node-monitor-grace-period: kwok's node heartbeat comes every 20-45 s, more than the default
# grace; a longer one keeps the fake node from being marked NotReady and its pods evicted.
start_controller_manager() {
	local kubeconfig="$TESTBED_DIR/controller-manager.kubeconfig"
	start_process kube-controller-manager "$KUBE_DIR/kube-controller-manager" \
		--kubeconfig "$kubeconfig" \
		--authentication-kubeconfig "$kubeconfig" \
		--authorization-kubeconfig "$kubeconfig" \
		--bind-address 127.0.0.1 \
		--secure-port "$KCM_PORT" \
		--controllers '*' \
		--use-service-account-credentials \
		--service-account-private-key-file "$PKI_DIR/sa.key" \
		--root-ca-file "$PKI_DIR/ca.crt" \
		--cluster-signing-cert-file "$PKI_DIR/ca.crt" \
		--cluster-signing-key-file "$PKI_DIR/ca.key" \
		--pvclaimbinder-sync-period 2s \
		--node-monitor-grace-period 300s \
		--kube-api-qps "$KCM_KUBE_API_QPS" \
		--kube-api-burst "$KCM_KUBE_API_BURST" \
		--leader-elect=false \
		--cert-dir "$PKI_DIR/kcm-generated"
}

start_scheduler() {
	local kubeconfig="$TESTBED_DIR/scheduler.kubeconfig"
	start_process kube-scheduler "$KUBE_DIR/kube-scheduler" \
		--kubeconfig "$kubeconfig" \
		--authentication-kubeconfig "$kubeconfig" \
		--authorization-kubeconfig "$kubeconfig" \
		--bind-address 127.0.0.1 \
		--secure-port "$SCHEDULER_PORT" \
		--leader-elect=false \
		--cert-dir "$PKI_DIR/scheduler-generated"
}

start_kwok() {
	local config_args=()
	local stage
	for stage in "$KWOK_DIR"/stages/*.yaml; do config_args+=(--config "$stage"); done
	start_process kwok "$KWOK_DIR/kwok" \
		--kubeconfig "$ADMIN_KUBECONFIG" \
		--manage-all-nodes=false \
		--manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
		--cidr 10.244.0.0/16 \
		--node-ip 127.0.0.1 \
		--server-address "127.0.0.1:$KWOK_PORT" \
		"${config_args[@]}"
}

apply_fake_node() {
	kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $FAKE_NODE
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $FAKE_NODE
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable:
    cpu: "32"
    memory: 256Gi
    pods: "1000"
  capacity:
    cpu: "32"
    memory: 256Gi
    pods: "1000"
EOF
}

node_is_ready() {
	[ "$(kubectl_admin get node "$FAKE_NODE" \
		-o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = "True" ]
}

start_rpcbind() {
	if ! is_running rpcbind && rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
		log "a portmapper not started by the test bed already answers on 127.0.0.1:111; using it"
		return 0
	fi
	# -w: warm start (keeps registrations in a state file); -f: foreground. Not -h: it crashes.
	start_process rpcbind rpcbind -f -w
	WAIT_PROCESS=rpcbind wait_until "rpcbind" 30 rpcinfo -p 127.0.0.1
}

prepare_exports() {
	mkdir -p "$EXPORT_DIR" "$SQUASH_EXPORT_DIR" "$V4_EXPORT_DIR" "$TESTBED_DIR/ganesha"
	chmod 0755 "$EXPORT_DIR" "$V4_EXPORT_DIR"
	chown "$SQUASH_EXPORT_UID:$SQUASH_EXPORT_GID" "$SQUASH_EXPORT_DIR"
	chmod 0755 "$SQUASH_EXPORT_DIR"
	sed -e "s|@NFS_PORT@|$NFS_PORT|" -e "s|@MOUNT_PORT@|$MOUNT_PORT|" \
		-e "s|@EXPORT_DIR@|$EXPORT_DIR|" -e "s|@SQUASH_EXPORT_DIR@|$SQUASH_EXPORT_DIR|" \
		-e "s|@V4_EXPORT_DIR@|$V4_EXPORT_DIR|" \
		"$here/ganesha.conf.tmpl" >"$TESTBED_DIR/ganesha/ganesha.conf"
}

write_env() {
	local file="$TESTBED_DIR/env"
	cat >"$file.tmp" <<EOF
# Written by e2e/testbed/up.sh; source it (set -a) before running the e2e suite.
KUBECONFIG=$ADMIN_KUBECONFIG
E2E_NFS_SERVER=127.0.0.1
E2E_NFS_PATH=$EXPORT_DIR
E2E_NFS_SQUASH_PATH=$SQUASH_EXPORT_DIR
E2E_EXPORT_DIR=$EXPORT_DIR
E2E_SQUASH_EXPORT_DIR=$SQUASH_EXPORT_DIR
E2E_SQUASH_EXPORT_UID=$SQUASH_EXPORT_UID
E2E_SQUASH_EXPORT_GID=$SQUASH_EXPORT_GID
E2E_NFS_V4_PATH=$V4_EXPORT_PSEUDO
E2E_V4_EXPORT_DIR=$V4_EXPORT_DIR
E2E_NFS_PORT=$NFS_PORT
E2E_PROVISIONER_BIN=$REPO_ROOT/bin/nfs-subdir-provisioner
E2E_NFS_STOP_CMD="TESTBED_DIR=$TESTBED_DIR $here/nfs-server.sh stop"
E2E_NFS_START_CMD="TESTBED_DIR=$TESTBED_DIR $here/nfs-server.sh start"
E2E_TESTBED_LOGS=$LOG_DIR
E2E_TESTBED_DIR=$TESTBED_DIR
E2E_REPO_ROOT=$REPO_ROOT
EOF
	mv "$file.tmp" "$file"
}

main() {
	local started=$SECONDS
	check_binaries
	mkdir -p "$TESTBED_DIR" "$LOG_DIR" "$PID_DIR"
	log "test bed in $TESTBED_DIR (logs: $LOG_DIR)"
	make_pki
	start_etcd
	start_apiserver
	start_controller_manager
	start_scheduler
	start_kwok
	start_rpcbind
	prepare_exports
	"$here/nfs-server.sh" start
	log "waiting for the default ServiceAccount and a Ready fake node"
	wait_until "the default ServiceAccount" 120 kubectl_admin get serviceaccount default -n default
	apply_fake_node
	WAIT_PROCESS=kwok wait_until "node $FAKE_NODE Ready" 120 node_is_ready
	write_env
	log "test bed up in $((SECONDS - started)) s; env for the e2e suite: $TESTBED_DIR/env"
	log "kubectl: $KUBECTL --kubeconfig $ADMIN_KUBECONFIG get nodes"
}

main "$@"

#!/usr/bin/env bash
# The StatefulSet walkthrough on the local test bed (make demo; make testbed-up has run):
# starts the provisioner with its ServiceAccount's token, applies deploy/class.yaml and
# deploy/examples/redis-statefulset.yaml, and shows the claims, the PVs, the directories on the
# export, a file surviving a pod delete and the archive after a claim delete. Leaves it running.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/lib.sh
source "$here/testbed/lib.sh"

REPO_ROOT="$(cd "$here/.." && pwd)"
[ -f "$TESTBED_DIR/env" ] || die "$TESTBED_DIR/env is missing: run make testbed-up first"
set -a
# shellcheck disable=SC1091
source "$TESTBED_DIR/env"
set +a
[ -x "$E2E_PROVISIONER_BIN" ] || die "$E2E_PROVISIONER_BIN is missing: run make build"

DEMO_DIR="$TESTBED_DIR/demo"
METRICS_ADDRESS="${DEMO_METRICS_ADDRESS:-127.0.0.1:18080}"
STS=redis-pv-sts
CLAIM_0=redis-100m-pvc-$STS-0
CLAIM_1=redis-100m-pvc-$STS-1
# shellcheck disable=SC2153 # KUBECONFIG comes from the env file
kubectl() { "$KUBE_DIR/kubectl" --kubeconfig "$KUBECONFIG" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() {
	printf '$ %s\n' "$*"
	"$@"
}

pod_uid() { kubectl get pod "$1" -o jsonpath='{.metadata.uid}' 2>/dev/null; }
pod_recreated_ready() {
	local uid
	uid="$(pod_uid "$1")"
	[ -n "$uid" ] && [ "$uid" != "$2" ] &&
		[ "$(kubectl get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
claim_dir() {
	local volume
	volume="$(kubectl get pvc "$1" -o jsonpath='{.spec.volumeName}')"
	echo "default-$1-$volume"
}
pv_gone() { ! kubectl get pv "$1" >/dev/null 2>&1; }
PV_COLUMNS='NAME:.metadata.name,CLAIM:.spec.claimRef.name,STATUS:.status.phase,SERVER:.spec.nfs.server,PATH:.spec.nfs.path,RECLAIM:.spec.persistentVolumeReclaimPolicy'
# show_export_dirs VOLUME...: this run's directories on the export, those whose names hold the
# given PV names (other claims', and archives an earlier run left, are left out).
show_export_dirs() {
	local pattern
	pattern="$(IFS='|'; echo "$*")"
	printf "\$ ls -l %s | grep -E '%s'\n" "$E2E_EXPORT_DIR" "$pattern"
	# shellcheck disable=SC2010 # a listing for people to read, names are ours
	ls -l "$E2E_EXPORT_DIR" | grep -E -- "$pattern"
}

main() {
	mkdir -p "$DEMO_DIR"
	step "Provisioner: RBAC from deploy/rbac.yaml, started with its ServiceAccount token"
	show kubectl apply --server-side --force-conflicts -f "$REPO_ROOT/deploy/rbac.yaml"
	start_provisioner demo-provisioner "$(provisioner_kubeconfig "$DEMO_DIR")" "$METRICS_ADDRESS"
	echo "provisioner pid $(pid_of demo-provisioner), log $LOG_DIR/demo-provisioner.log, metrics http://$METRICS_ADDRESS/metrics"

	step "StorageClass nfs-client and the redis StatefulSet (2 replicas, one claim each)"
	show kubectl apply --server-side --force-conflicts -f "$REPO_ROOT/deploy/class.yaml"
	show kubectl apply --server-side --force-conflicts -f "$REPO_ROOT/deploy/examples/redis-statefulset.yaml"
	show kubectl rollout status statefulset/$STS --timeout 180s

	step "Claims Bound, one PV each"
	show kubectl get pvc -l app=$STS
	local volumes
	read -r -a volumes <<<"$(kubectl get pvc -l app=$STS -o jsonpath='{.items[*].spec.volumeName}')"
	show kubectl get pv "${volumes[@]}" -o custom-columns="$PV_COLUMNS"

	step "Directories on the export ($E2E_EXPORT_DIR)"
	show_export_dirs "${volumes[@]}"

	step "Redis stand-in writes into replica 0's volume; pod 0 is deleted and recreated"
	local dir0
	dir0="$(claim_dir "$CLAIM_0")"
	echo "written by redis-pv-sts-0 at $(date -u +%FT%TZ)" >"$E2E_EXPORT_DIR/$dir0/dump.rdb"
	show cat "$E2E_EXPORT_DIR/$dir0/dump.rdb"
	local old_uid
	old_uid="$(pod_uid "$STS-0")"
	show kubectl delete pod "$STS-0"
	wait_until "pod $STS-0 recreated and Ready" 180 pod_recreated_ready "$STS-0" "$old_uid"
	show kubectl get pod "$STS-0" -o custom-columns='NAME:.metadata.name,UID:.metadata.uid,CLAIM:.spec.volumes[0].persistentVolumeClaim.claimName,READY:.status.conditions[?(@.type=="Ready")].status'
	echo "old pod uid $old_uid; the new pod mounts the same claim, and the file is still there:"
	show cat "$E2E_EXPORT_DIR/$(claim_dir "$CLAIM_0")/dump.rdb"

	step "Scale to 1 and delete replica 1's claim: its directory is archived"
	local volume1 dir1
	volume1="$(kubectl get pvc "$CLAIM_1" -o jsonpath='{.spec.volumeName}')"
	dir1="$(claim_dir "$CLAIM_1")"
	show kubectl scale statefulset/$STS --replicas 1
	show kubectl delete pvc "$CLAIM_1" --wait --timeout 180s
	wait_until "PV $volume1 deleted by the provisioner" 120 pv_gone "$volume1"
	show_export_dirs "${volumes[@]}"
	if [ -d "$E2E_EXPORT_DIR/archived-$dir1" ]; then
		echo "replica 1's directory was archived as archived-$dir1"
	else
		die "archived-$dir1 is missing on the export; see $LOG_DIR/demo-provisioner.log"
	fi

	step "Left running"
	cat <<TEXT
  kubectl:      $KUBE_DIR/kubectl --kubeconfig $KUBECONFIG get pvc,pv
  export:       ls $E2E_EXPORT_DIR
  provisioner:  tail -f $LOG_DIR/demo-provisioner.log; curl http://$METRICS_ADDRESS/metrics
  tear down:    make testbed-down
TEXT
}

main "$@"

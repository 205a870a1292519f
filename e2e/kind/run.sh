#!/usr/bin/env bash
# kind e2e (needs Docker on Linux; cannot run on the dev machines, which have no Docker engine):
#   1. a kind cluster whose control-plane node has the host directory $KIND_EXPORTS at /exports
#   2. the provisioner image built (the Dockerfile runs `make build`) and loaded into kind
#   3. NFS-Ganesha in the cluster (hostNetwork on the control-plane node), two NFSv3 exports
#   4. the node suite's redis and shell images (tools/ocibuild files), loaded into kind
#   5. the same Go e2e suites as on the local test bed, pointed at this cluster and NFS server; the
#      node suite (e2e/node) installs the chart with helm and runs the walkthrough on the worker,
#      the same steps the test bed's VM node runs (make test-node)
# Usage: e2e/kind/run.sh [extra go test args]. KEEP_CLUSTER=1 leaves the cluster running.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CACHE_DIR="${CACHE_DIR:-$HOME/.cache/nfs-subdir-provisioner}"
KIND_VERSION="${KIND_VERSION:-v0.33.0}"
CLUSTER="${KIND_CLUSTER:-nfsp-e2e}"
KIND_EXPORTS="${KIND_EXPORTS:-$(mktemp -d "${TMPDIR:-/tmp}/nfsp-kind-exports.XXXXXX")}"
NFS_IMAGE="nfsp-e2e-nfs-server:latest"
SQUASH_ID=1000

log() { printf '[kind-e2e %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
command -v docker >/dev/null || { echo "kind e2e needs Docker" >&2; exit 2; }

kind="$CACHE_DIR/kind-$KIND_VERSION/kind"
[[ -x "$kind" ]] || GOBIN="$(dirname "$kind")" go install "sigs.k8s.io/kind@$KIND_VERSION"
kubectl="$(command -v kubectl || echo "$CACHE_DIR/kubernetes-v1.37.2/kubectl")"
kubeconfig="$KIND_EXPORTS.kubeconfig"
export KUBECONFIG="$kubeconfig"
k() { "$kubectl" "$@"; }

dump_logs() {
	log "failed; cluster state and logs:"
	k get pods,pvc,pv -A -o wide || true
	k -n nfsp-node-system logs deploy/nfsp-nfs-subdir-provisioner --tail=200 || true
	k -n nfs-server logs deploy/nfs-server --tail=100 || true
}
cleanup() {
	local rc=$?
	[[ $rc -eq 0 ]] || dump_logs
	if [[ -z "${KEEP_CLUSTER:-}" ]]; then "$kind" delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
	exit "$rc"
}
trap cleanup EXIT

# 1. Cluster. The exports live on the host so the suite can check them without NFS.
mkdir -p "$KIND_EXPORTS"
if ! "$kind" get clusters | grep -qx "$CLUSTER"; then
	log "creating kind cluster $CLUSTER (exports in $KIND_EXPORTS)"
	"$kind" create cluster --name "$CLUSTER" --wait 180s --kubeconfig "$kubeconfig" --config - <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraMounts:
      - hostPath: $KIND_EXPORTS
        containerPath: /exports
  - role: worker
EOF
fi
"$kind" get kubeconfig --name "$CLUSTER" >"$kubeconfig"
# kubelet mounts NFS PVs with mount.nfs, which kind's node image lacks.
for node in $("$kind" get nodes --name "$CLUSTER"); do
	docker exec "$node" sh -c 'command -v mount.nfs >/dev/null || { apt-get update -qq && apt-get install -y -qq nfs-common >/dev/null; }'
done

# 2. Images.
log "building the provisioner image (make image) and $NFS_IMAGE"
# The provisioner's image is the OCI layout tarball of make image (no docker build); its
# index.json names it ghcr.io/nfs-subdir/nfs-subdir-provisioner:<version>, the name it is loaded as.
make -C "$root" image VERSION=e2e >/dev/null
"$kind" load image-archive --name "$CLUSTER" "$root/bin/nfs-subdir-provisioner-e2e.oci.tar"
IMAGE="ghcr.io/nfs-subdir/nfs-subdir-provisioner:e2e"
docker build -q -t "$NFS_IMAGE" "$here/nfs-server" >/dev/null
"$kind" load docker-image --name "$CLUSTER" "$NFS_IMAGE"

# 3. NFS server.
k create namespace nfs-server --dry-run=client -o yaml | k apply -f - >/dev/null
sed -e "s/value: \"1000\"/value: \"$SQUASH_ID\"/" "$here/nfs-server.yaml" | k apply -f - >/dev/null
k -n nfs-server rollout status deploy/nfs-server --timeout=180s
nfs_ip="$(k get node "$CLUSTER-control-plane" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')"
log "NFS server at $nfs_ip"

# 4. The node suite's images (the shell and redis images from this machine's Debian files, as the
# test bed's node gets them), loaded into kind; the suite installs the chart itself (e2e/node).
ocibuild="$CACHE_DIR/bin/ocibuild"
(cd "$root/tools/ocibuild" && go build -o "$ocibuild" .)
images="$(mktemp -d "${TMPDIR:-/tmp}/nfsp-kind-images.XXXXXX")"
"$ocibuild" files -out "$images/redis.tar" -name nfsp.local/redis:kind -user 999:999 \
	-file /usr/bin/redis-server -file /usr/bin/redis-cli -dir /data -dir /tmp -entrypoint /usr/bin/redis-server >/dev/null
"$ocibuild" files -out "$images/busybox.tar" -name nfsp.local/busybox:kind -file /bin/busybox \
	-link /bin/sh=busybox -dir /tmp -entrypoint /bin/sh >/dev/null
for tarball in "$images"/*.tar; do "$kind" load image-archive --name "$CLUSTER" "$tarball"; done

# 5. The e2e suite, as on the local test bed: it runs the binary as a process with a token of
# deploy/'s ServiceAccount, against this cluster and NFS server; the node suite (e2e/node) runs on
# the kind worker as it runs on the test bed's VM: helm install, the redis walkthrough, real mounts.
make -C "$root" build >/dev/null
printf -v nfs_stop '%q -n nfs-server scale deploy/nfs-server --replicas=0 && %q -n nfs-server wait --for=delete pod -l app=nfs-server --timeout=120s' "$kubectl" "$kubectl"
printf -v nfs_start '%q -n nfs-server scale deploy/nfs-server --replicas=1 && %q -n nfs-server rollout status deploy/nfs-server --timeout=120s' "$kubectl" "$kubectl"
log "running the e2e suite"
cd "$root"
E2E_PROVISIONER_BIN="$root/bin/nfs-subdir-provisioner" \
	E2E_NFS_SERVER="$nfs_ip" \
	E2E_NFS_PATH=/exports/rw \
	E2E_NFS_SQUASH_PATH=/exports/squash \
	E2E_EXPORT_DIR="$KIND_EXPORTS/rw" \
	E2E_SQUASH_EXPORT_DIR="$KIND_EXPORTS/squash" \
	E2E_SQUASH_EXPORT_UID="$SQUASH_ID" \
	E2E_SQUASH_EXPORT_GID="$SQUASH_ID" \
	E2E_NFS_STOP_CMD="$nfs_stop" \
	E2E_NFS_START_CMD="$nfs_start" \
	E2E_REPO_ROOT="$root" \
	E2E_NODE_NAME="$CLUSTER-worker" \
	E2E_NODE_SSH="docker exec $CLUSTER-worker" \
	E2E_NODE_NFS_SERVER="$nfs_ip" \
	E2E_NODE_IMAGE_PROVISIONER="$IMAGE" \
	E2E_NODE_IMAGE_REDIS=nfsp.local/redis:kind \
	E2E_NODE_IMAGE_SHELL=nfsp.local/busybox:kind \
	NFSP_REQUIRE_NODE=1 \
	go test -p 1 -count=1 -tags e2e -timeout 40m -v ./e2e/... "$@"

#!/usr/bin/env bash
# Builds the real node's own binaries from Go modules once, cached by version:
#   $NODE_BIN_DIR/{containerd,containerd-shim-runc-v2,ctr,runc,crictl,pause}
#   $NODE_BIN_DIR/cni/{bridge,host-local,loopback,portmap}
# kubelet and kube-proxy come from the test bed's kubernetes build (build.sh). runc is built
# with cgo against Debian's libseccomp (the node's root file system has the same library).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/versions.sh
source "$here/../versions.sh"

log() { printf '[node-build %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

dir="$NODE_BIN_DIR"
want=(containerd containerd-shim-runc-v2 ctr runc crictl pause cni/bridge cni/host-local cni/loopback cni/portmap)
cached() {
	local f
	for f in "${want[@]}"; do [ -x "$dir/$f" ] || return 1; done
}
cached && exit 0

mkdir -p "$dir/cni"
work="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod
log "building containerd $CONTAINERD_VERSION (about 3 min cold)"
# The snapshotters that need cgo or kernel parts the node has no use for are left out.
CGO_ENABLED=0 GOBIN="$work" go install -trimpath -tags "no_btrfs no_devmapper no_zfs" \
	-ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
	"github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
	"github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION"
log "building runc $RUNC_VERSION"
CGO_ENABLED=1 GOBIN="$work" go install -trimpath -tags seccomp \
	-ldflags "-s -w -X main.version=${RUNC_VERSION#v}" "github.com/opencontainers/runc@$RUNC_VERSION"
log "building the CNI plugins $CNI_PLUGINS_VERSION"
mkdir -p "$work/cni"
CGO_ENABLED=0 GOBIN="$work/cni" go install -trimpath -ldflags "-s -w" \
	"github.com/containernetworking/plugins/plugins/main/bridge@$CNI_PLUGINS_VERSION" \
	"github.com/containernetworking/plugins/plugins/main/loopback@$CNI_PLUGINS_VERSION" \
	"github.com/containernetworking/plugins/plugins/ipam/host-local@$CNI_PLUGINS_VERSION" \
	"github.com/containernetworking/plugins/plugins/meta/portmap@$CNI_PLUGINS_VERSION"
log "building crictl $CRI_TOOLS_VERSION"
CGO_ENABLED=0 GOBIN="$work" go install -trimpath \
	-ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION" \
	"sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION"
log "building pause"
(cd "$here/pause" && GOFLAGS="" CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/pause" .)
for f in "${want[@]}"; do mv -f "$work/$f" "$dir/$f"; done
log "node binaries ready in $dir"

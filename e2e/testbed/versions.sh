# Versions and cache locations shared by the test bed scripts (sourced, not run).
# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this file
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
# Helm 4 is the bed's helm; the chart checks run on the last Helm 3 release too.
HELM_VERSION="${HELM_VERSION:-v4.3.2}"
HELM3_VERSION="${HELM3_VERSION:-v3.21.4}"

CACHE_DIR="${CACHE_DIR:-$HOME/.cache/nfs-subdir-provisioner}"
TESTBED_DIR="${TESTBED_DIR:-/tmp/nfsp-testbed}"

ETCD_DIR="$CACHE_DIR/etcd-$ETCD_VERSION"
KUBE_DIR="$CACHE_DIR/kubernetes-$KUBE_VERSION"
KWOK_DIR="$CACHE_DIR/kwok-$KWOK_VERSION"
# kubelet and kube-proxy are the real node's (make node-up); one build makes them all.
KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)

# The real node (make node-up): a qemu VM with Debian's kernel and a debootstrap root file system,
# and kubelet, kube-proxy, containerd, runc, the CNI plugins and crictl built from Go modules.
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
RUNC_VERSION="${RUNC_VERSION:-v1.5.3}"
CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-v1.10.0}"
CRI_TOOLS_VERSION="${CRI_TOOLS_VERSION:-v1.37.0}"
NODE_DEBIAN_SUITE="${NODE_DEBIAN_SUITE:-bookworm}"
NODE_DEBIAN_MIRROR="${NODE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_PACKAGES=(linux-image-amd64 kmod iproute2 iptables nfs-common nfs-kernel-server openssh-server libseccomp2 ca-certificates procps util-linux mount conntrack socat ethtool netbase)
# One cache directory per package list, so that changing it builds a new root file system.
NODE_ROOTFS_DIR="$CACHE_DIR/node-rootfs-$NODE_DEBIAN_SUITE-$(printf '%s\n' "${NODE_PACKAGES[@]}" | sha256sum | cut -c1-12)"
NODE_BIN_DIR="$CACHE_DIR/node-bin-containerd-$CONTAINERD_VERSION-runc-$RUNC_VERSION-cni-$CNI_PLUGINS_VERSION-crictl-$CRI_TOOLS_VERSION"
# Every Debian package the tests, the test bed and the lint need; .ci/run installs them and
# build.sh checks them.
DEBIAN_PACKAGES=(nfs-ganesha nfs-ganesha-vfs rpcbind openssl iproute2 procps make git ca-certificates jq yq curl tcpdump shellcheck
	debootstrap qemu-system-x86 qemu-utils e2fsprogs libseccomp-dev busybox-static redis-server openssh-client
	libnfs-utils)

export GOFLAGS="${GOFLAGS:-}"

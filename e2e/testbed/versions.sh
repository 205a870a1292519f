# Versions and cache locations shared by the test bed scripts (sourced, not run).
# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this file
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"

CACHE_DIR="${CACHE_DIR:-$HOME/.cache/nfs-subdir-provisioner}"
TESTBED_DIR="${TESTBED_DIR:-/tmp/nfsp-testbed}"

ETCD_DIR="$CACHE_DIR/etcd-$ETCD_VERSION"
KUBE_DIR="$CACHE_DIR/kubernetes-$KUBE_VERSION"
KWOK_DIR="$CACHE_DIR/kwok-$KWOK_VERSION"
KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
# Every Debian package the tests, the test bed and the lint need; .ci/run installs them and
# build.sh checks them.
DEBIAN_PACKAGES=(nfs-ganesha nfs-ganesha-vfs rpcbind openssl iproute2 procps make git ca-certificates jq yq curl tcpdump shellcheck)

export GOFLAGS="${GOFLAGS:-}"

# Versions and cache locations shared by the test bed scripts (sourced, not run).
# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this file
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"

CACHE_DIR="${CACHE_DIR:-$HOME/.cache/nfs-subdir-provisioner}"
TESTBED_DIR="${TESTBED_DIR:-/tmp/nfsp-testbed}"

ETCD_DIR="$CACHE_DIR/etcd-$ETCD_VERSION"
KUBE_DIR="$CACHE_DIR/kubernetes-$KUBE_VERSION"
KWOK_DIR="$CACHE_DIR/kwok-$KWOK_VERSION"
KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
DEBIAN_PACKAGES=(nfs-ganesha nfs-ganesha-vfs rpcbind openssl curl)

export GOFLAGS="${GOFLAGS:-}"

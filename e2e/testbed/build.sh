#!/usr/bin/env bash
# Builds the test bed's binaries once and caches them outside the repo, keyed by version:
#   $CACHE_DIR/etcd-<v>/etcd
#   $CACHE_DIR/kubernetes-<v>/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl,kubelet,kube-proxy}
#   $CACHE_DIR/kwok-<v>/{kwok,stages/*.yaml}
# and installs the Debian packages the bed needs (NFS-Ganesha, rpcbind, openssl).
# A warm run only checks that the files exist and takes seconds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/versions.sh
source "$here/versions.sh"

log() { printf '[testbed-build %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# build_etcd: a throwaway module requiring the etcd server (it has a main package).
build_etcd() {
	local dir="$ETCD_DIR"
	[ -x "$dir/etcd" ] && return 0
	log "building etcd $ETCD_VERSION (about 1 min cold)"
	local work="$CACHE_DIR/src/etcd-$ETCD_VERSION"
	mkdir -p "$work" "$dir"
	(
		cd "$work"
		[ -f go.mod ] || go mod init testbed/etcd >/dev/null 2>&1
		go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
		CGO_ENABLED=0 go build -trimpath -o "$dir/etcd.tmp" go.etcd.io/etcd/server/v3
	)
	mv "$dir/etcd.tmp" "$dir/etcd"
	log "etcd ready: $dir/etcd"
}

# write_kubernetes_module: a module that requires k8s.io/kubernetes and replaces every staging module
# (which kubernetes' own go.mod points at ./staging/...) with its published v0.x.y twin.
write_kubernetes_module() {
	local work="$1"
	local kube_gomod
	kube_gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
	[ -f "$kube_gomod" ] || { echo "cannot find go.mod of k8s.io/kubernetes@$KUBE_VERSION" >&2; return 1; }
	local staging_version="v0.${KUBE_VERSION#v1.}"
	local go_directive
	go_directive="$(sed -n 's/^go \(.*\)$/\1/p' "$kube_gomod" | head -n1)"
	{
		echo "module testbed/kubernetes"
		echo
		echo "go $go_directive"
		echo
		echo "require k8s.io/kubernetes $KUBE_VERSION"
		echo
		echo "replace ("
		grep -oE '^[[:space:]]*k8s\.io/[a-zA-Z0-9._/-]+ => \./staging/' "$kube_gomod" |
			awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
		echo ")"
	} >"$work/go.mod"
	{
		printf '//go:build tools\n\npackage tools\n\nimport (\n'
		local b
		for b in "${KUBE_BINARIES[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
		printf ')\n'
	} >"$work/tools.go"
}

build_kubernetes() {
	local dir="$KUBE_DIR"
	local b
	kubernetes_cached && return 0
	log "building kubernetes $KUBE_VERSION: ${KUBE_BINARIES[*]}"
	log "cold this takes 10-13 min on 2 cores (warm Go build cache: ~20 s); progress every 30 s"
	local work="$CACHE_DIR/src/kubernetes-$KUBE_VERSION"
	mkdir -p "$work" "$dir"
	(
		cd "$work"
		write_kubernetes_module "$work"
		log "resolving modules"
		go mod tidy
		log "compiling (go build output follows when it finishes)"
		local pkgs=()
		for b in "${KUBE_BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
		CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $(kube_version_ldflags)" -o "$dir/" "${pkgs[@]}" &
		local build_pid=$!
		local started=$SECONDS
		while kill -0 "$build_pid" 2>/dev/null; do
			sleep 30 &
			wait $! || true
			kill -0 "$build_pid" 2>/dev/null &&
				log "still compiling kubernetes ($((SECONDS - started)) s elapsed; Go build cache $(du -sh "$(go env GOCACHE)" 2>/dev/null | cut -f1))"
		done
		wait "$build_pid"
	)
	for b in "${KUBE_BINARIES[@]}"; do [ -x "$dir/$b" ] || { echo "kubernetes build did not produce $b" >&2; return 1; }; done
	log "kubernetes binaries ready in $dir"
}

build_kwok() {
	local dir="$KWOK_DIR"
	[ -x "$dir/kwok" ] && [ -d "$dir/stages" ] && return 0
	log "building kwok $KWOK_VERSION"
	mkdir -p "$dir"
	CGO_ENABLED=0 GOBIN="$dir" go install -trimpath "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
	local kwok_src
	kwok_src="$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	rm -rf "$dir/stages.tmp"
	mkdir -p "$dir/stages.tmp"
	# Stages: fake nodes become Ready and keep heartbeating; pods on them become Running/Ready, and
	# deleted pods go away (so a StatefulSet recreates them).
	local stage
	for stage in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
		cp "$kwok_src/kustomize/stage/$stage" "$dir/stages.tmp/"
	done
	chmod u+w "$dir"/stages.tmp/*
	rm -rf "$dir/stages"
	mv "$dir/stages.tmp" "$dir/stages"
	log "kwok ready: $dir/kwok"
}

# kube_version_ldflags stamps the version the way Kubernetes' own build does (hack/lib/version.sh),
# so kubectl version, Helm's .Capabilities.KubeVersion and kubeVersion constraints see
# $KUBE_VERSION rather than v0.0.0-master.
kube_version_ldflags() {
	local major minor pkg flags=""
	major="${KUBE_VERSION#v}"
	minor="${major#*.}"
	major="${major%%.*}"
	minor="${minor%%.*}"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
		flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	done
	echo "$flags"
}

# kubernetes_cached: every binary is there and reports $KUBE_VERSION (binaries of an older
# build.sh report v0.0.0-master and are rebuilt; a warm Go cache only relinks).
kubernetes_cached() {
	local b
	for b in "${KUBE_BINARIES[@]}"; do [ -x "$KUBE_DIR/$b" ] || return 1; done
	"$KUBE_DIR/kubectl" version --client -o json 2>/dev/null | grep -q "\"gitVersion\": \"$KUBE_VERSION\""
}

main() {
	mkdir -p "$CACHE_DIR"
	"$here/packages.sh"
	if kubernetes_cached; then
		build_etcd
		build_kwok
		log "all test bed binaries cached under $CACHE_DIR"
		return 0
	fi
	# The kubernetes build is the long pole: start it first, build the rest beside it.
	build_kubernetes >"$CACHE_DIR/kubernetes-build.log" 2>&1 &
	local kube_pid=$!
	log "kubernetes build running in background (log: $CACHE_DIR/kubernetes-build.log)"
	tail -n +1 -f "$CACHE_DIR/kubernetes-build.log" --pid "$kube_pid" &
	local tail_pid=$!
	local rc=0
	build_etcd || rc=$?
	[ $rc -eq 0 ] && { build_kwok || rc=$?; }
	local kube_rc=0
	wait "$kube_pid" || kube_rc=$?
	wait "$tail_pid" 2>/dev/null || true
	[ $kube_rc -eq 0 ] || { echo "kubernetes build failed; see $CACHE_DIR/kubernetes-build.log" >&2; exit "$kube_rc"; }
	[ $rc -eq 0 ] || exit "$rc"
	log "all test bed binaries cached under $CACHE_DIR"
}

main "$@"

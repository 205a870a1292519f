#!/usr/bin/env bash
# Stops the real node's VM (make node-down). Its disk is a throw-away overlay: the next node-up
# boots a fresh node. The chart release node-up installed (class nfs-client) and the Node object go
# too, so that the bed is as before node-up (the kwok walkthrough makes its own nfs-client).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/lib.sh
source "$here/../lib.sh"
if [ -s "$TESTBED_DIR/admin.kubeconfig" ] && is_running kube-apiserver; then
	helm="$("$here/../build-helm.sh" --path)"
	if [ -x "$helm" ] && "$helm" status nfsp --namespace nfsp-node-system --kubeconfig "$TESTBED_DIR/admin.kubeconfig" >/dev/null 2>&1; then
		"$helm" uninstall nfsp --namespace nfsp-node-system --kubeconfig "$TESTBED_DIR/admin.kubeconfig" >/dev/null || true
	fi
	"$KUBE_DIR/kubectl" --kubeconfig "$TESTBED_DIR/admin.kubeconfig" delete node "${NODE_NAME:-nfsp-node}" --ignore-not-found --wait=false >/dev/null || true
fi
stop_process node-vm
rm -f "$TESTBED_DIR/node/root.qcow2"

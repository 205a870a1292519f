#!/usr/bin/env bash
# Stops the real node's VM (make node-down). Its disk is a throw-away overlay: the next node-up
# boots a fresh node. The Node object goes too, so that nothing waits on a node that is gone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/lib.sh
source "$here/../lib.sh"
stop_process node-vm
if [ -s "$TESTBED_DIR/admin.kubeconfig" ] && is_running kube-apiserver; then
	"$KUBE_DIR/kubectl" --kubeconfig "$TESTBED_DIR/admin.kubeconfig" delete node "${NODE_NAME:-nfsp-node}" --ignore-not-found --wait=false >/dev/null || true
fi
rm -f "$TESTBED_DIR/node/root.qcow2"

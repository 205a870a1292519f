#!/usr/bin/env bash
# Prints the real node's logs after a failure: the VM console, then the kubelet's, containerd's,
# kube-proxy's and the image imports' (through ssh.sh), the last LOG_LINES (100) lines of each.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/versions.sh
source "$here/../versions.sh"
lines="${LOG_LINES:-100}"
echo "===== node VM console ($TESTBED_DIR/node/console.log)"
tail -n "$lines" "$TESTBED_DIR/node/console.log" 2>/dev/null || echo "(none)"
for f in kubelet containerd kube-proxy images sshd; do
	echo "===== node /var/log/$f.log"
	"$here/ssh.sh" tail -n "$lines" "/var/log/$f.log" 2>/dev/null || echo "(node not reachable)"
done

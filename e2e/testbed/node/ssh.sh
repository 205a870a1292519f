#!/usr/bin/env bash
# The real node's exec helper: runs a command on the node VM as root, through the ssh port that
# up.sh forwards on 127.0.0.1. Examples:
#   e2e/testbed/node/ssh.sh crictl ps
#   e2e/testbed/node/ssh.sh tail -f /var/log/kubelet.log
#   e2e/testbed/node/ssh.sh            # a shell
set -euo pipefail
# shellcheck source=e2e/testbed/versions.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../versions.sh"
exec ssh -q -i "$TESTBED_DIR/node/ssh_key" -p "${NODE_SSH_PORT:-2222}" \
	-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
	-o ConnectTimeout=20 -o BatchMode=yes root@127.0.0.1 "$@"

#!/usr/bin/env bash
# Installs the Debian packages of e2e/testbed/versions.sh that are missing (apt, as root or with
# sudo). make test, make testbed-build and .ci/run call it; it does nothing when all are there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/versions.sh
source "$here/versions.sh"

log() { printf '[packages %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
log "installing Debian packages: ${missing[*]}"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
	"${sudo[@]}" apt-get update
	"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
# The packages ship services; the bed runs its own instances, so stop any the package started.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	"${sudo[@]}" systemctl disable --now nfs-ganesha rpcbind rpcbind.socket >/dev/null 2>&1 || true
fi

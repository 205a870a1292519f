#!/usr/bin/env bash
# Builds helm from its Go module into a versioned cache directory and prints its path:
#   build-helm.sh            the bed's helm, HELM_VERSION (Helm 4)
#   build-helm.sh v3.21.4    another release (the chart checks also run on Helm 3)
#   build-helm.sh --path [v] only print where it is (or would be), build nothing
# Idempotent: a cached binary that reports the right version is reused (~10 ms).
set -euo pipefail

# shellcheck source=e2e/testbed/versions.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/versions.sh"
only_path=0
if [ "${1:-}" = --path ]; then
	only_path=1
	shift
fi
version="${1:-$HELM_VERSION}"
major="${version%%.*}" # v3 or v4: the module's major version
dest="$CACHE_DIR/helm-$version"
bin="$dest/helm"
if [ "$only_path" = 1 ]; then
	echo "$bin"
	exit 0
fi

if [[ -x "$bin" ]] && "$bin" version --template '{{.Version}}' 2>/dev/null | grep -qx "$version"; then
	echo "$bin"
	exit 0
fi

mkdir -p "$dest"
echo "building helm $version into $dest (about 2 min on a cold Go cache)" >&2
tmp="$(mktemp -d "$dest/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# go install keeps the module's own go.mod (and its replaces); -ldflags sets the
# version string the way helm's Makefile does, so `helm version` is truthful.
GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath \
	-ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$version" \
	"helm.sh/helm/$major/cmd/helm@$version" >&2
mv -f "$tmp/helm" "$bin"
echo "$bin"

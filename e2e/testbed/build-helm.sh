#!/usr/bin/env bash
# Builds helm from its Go module into a versioned cache directory and prints its path.
# Idempotent: a cached binary that reports the right version is reused (~10 ms).
set -euo pipefail

# shellcheck source=e2e/testbed/versions.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/versions.sh"
dest="$CACHE_DIR/helm-$HELM_VERSION"
bin="$dest/helm"

if [[ -x "$bin" ]] && "$bin" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  echo "$bin"
  exit 0
fi

mkdir -p "$dest"
echo "building helm $HELM_VERSION into $dest (about 2 min on a cold Go cache)" >&2
tmp="$(mktemp -d "$dest/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# go install keeps the module's own go.mod (and its replaces); -ldflags sets the
# version string the way helm's Makefile does, so `helm version` is truthful.
GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
mv -f "$tmp/helm" "$bin"
echo "$bin"

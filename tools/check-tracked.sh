#!/usr/bin/env bash
# Fails when git tracks a file over 1 MiB or an executable binary (ELF): built binaries and
# large artefacts belong in bin/ or the cache, never in the repository. Run by make lint.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

limit=$((1024 * 1024))
bad=0
while IFS= read -r -d '' f; do
  [[ -f "$f" && ! -L "$f" ]] || continue # deleted in the work tree, or a symlink
  size=$(stat -c %s -- "$f")
  if ((size > limit)); then
    echo "tracked file over 1 MiB: $f ($size bytes); remove it (git rm --cached) and ignore its path" >&2
    bad=1
  fi
  if [[ "$(head -c 4 -- "$f" | od -An -tx1 | tr -d ' \n')" == 7f454c46 ]]; then
    echo "tracked ELF binary: $f; remove it (git rm --cached) and ignore its path" >&2
    bad=1
  fi
done < <(git ls-files -z)
exit "$bad"

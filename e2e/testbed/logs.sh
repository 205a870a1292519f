#!/usr/bin/env bash
# Prints the test bed's logs (called by make when the e2e suite fails). Each log is cut to its last
# LOG_LINES lines (default 200; 0 prints whole files); the full files stay in $TESTBED_DIR/logs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/lib.sh
source "$here/lib.sh"

LOG_LINES="${LOG_LINES:-200}"

[ -d "$LOG_DIR" ] || {
	echo "no test bed logs in $LOG_DIR"
	exit 0
}
for file in "$LOG_DIR"/*.log; do
	[ -e "$file" ] || continue
	printf '\n========== %s (%s lines) ==========\n' "$file" "$(wc -l <"$file")"
	if [ "$LOG_LINES" = 0 ]; then
		cat "$file"
	else
		tail -n "$LOG_LINES" "$file"
	fi
done

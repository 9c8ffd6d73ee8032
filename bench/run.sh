#!/usr/bin/env bash
# Runs every bench/*/run.sh in name order (this is what `make bench` calls).
# Each benchmark writes its own "## <name>" section of bench/RESULTS.md.
# Exit status is non-zero when any benchmark failed; all of them still run.
set -euo pipefail

dir="$(cd "$(dirname "$0")" && pwd)"
failed=()
for script in "$dir"/*/run.sh; do
	[ -f "$script" ] || continue
	name="$(basename "$(dirname "$script")")"
	echo "=== bench: $name ===" >&2
	if ! bash "$script"; then
		failed+=("$name")
	fi
done
if [ "${#failed[@]}" -gt 0 ]; then
	echo "=== bench: failed: ${failed[*]} ===" >&2
	exit 1
fi
echo "=== bench: all done; results in $dir/RESULTS.md ===" >&2

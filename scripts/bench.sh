#!/bin/sh
# `make bench`: run every scripts/bench-*.sh, each measuring one program side by
# side with its peers in one run and printing ratios. Reports only; never fails CI.
set -u
cd "$(dirname "$0")/.."
sh scripts/deps.sh bench || echo "bench: some peers could not be installed; their rows are skipped" >&2
found=0
for b in scripts/bench-*.sh; do
	[ -f "$b" ] || continue
	found=1
	echo "=== $b"
	sh "$b" || echo "bench: $b did not finish (status $?)"
done
[ "$found" -eq 1 ] || echo "bench: no benchmark scripts"
exit 0

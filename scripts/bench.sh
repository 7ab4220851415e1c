#!/usr/bin/env bash
# Runs every executable scripts/bench/*.sh in name order and prints their
# output. Each script compares wghooks with plain upstream inside one run
# (this machine's speed drifts between runs, so only same-run ratios mean
# anything). Exits non-zero if any script failed; the others still run.
set -u
cd "$(dirname "$0")/.."
status=0
for script in scripts/bench/*.sh; do
	[[ -f $script && -x $script ]] || continue
	echo "=== $script"
	if ! "$script"; then
		echo "!!! $script failed"
		status=1
	fi
	echo
done
exit "$status"

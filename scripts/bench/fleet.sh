#!/usr/bin/env bash
# A replacement gateway (same key, the address moved to it, no state file)
# and roaming clients that keep sending: seconds from the replacement up
# until every client's traffic flows again, with the fleet's shared state
# (WGHOOKS_TAKEOVER: one initiation to each) against without it (the
# clients' own timers), in the same run (tests/bench_fleet_state_test.go;
# in process, loopback UDP, one shared SQLite store, plain upstream
# clients). Goal: <= 1 s with the shared state.
#
#   CLIENTS=8 CAP=30s scripts/bench/fleet.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

CLIENTS=${CLIENTS:-8}
CAP=${CAP:-30s}
out=$(WGTEST_BENCH_FLEET_CLIENTS=$CLIENTS WGTEST_BENCH_FLEET_CAP=$CAP go test -count=1 -run '^$' \
	-bench '^BenchmarkFleetTakeover$' -benchtime 1x -timeout 10m ./tests 2>&1)

echo "replacement gateway, $CLIENTS roaming clients: seconds from the replacement up until every client is back (cut off at $CAP)"
awk -v cap="$CAP" '
	/^BenchmarkFleetTakeover\// {
		split($1, p, "/"); impl = p[2]; sub(/-[0-9]+$/, "", impl)
		for (i = 2; i <= NF; i++) {
			if ($(i+1) == "s/all-back") secs[impl] = $i
			if ($(i+1) == "back") back[impl] = $i
		}
	}
	END {
		if (!("shared-state" in secs) || !("no-state" in secs)) { print "no benchmark results"; exit 1 }
		w = secs["shared-state"]; u = secs["no-state"]
		ws = (back["shared-state"] == 1) ? sprintf("%.3f s", w) : sprintf("> %s", cap)
		us = (back["no-state"] == 1) ? sprintf("%.3f s", u) : sprintf("> %s", cap)
		ratio = (w > 0) ? sprintf("%s%.0fx", (back["no-state"] == 1) ? "" : ">", u / w) : "-"
		goal = (back["shared-state"] == 1 && w <= 1) ? "met" : "MISSED"
		printf "%-22s %12s\n%-22s %12s\n%-22s %12s  goal <= 1 s: %s\n", "with shared state", ws, "without", us, "ratio", ratio, goal
		exit (goal == "met") ? 0 : 1
	}
' <<<"$out" || { echo "$out" | grep -E '^(Benchmark|FAIL|---|ok)' >&2; exit 1; }

#!/usr/bin/env bash
# A replacement gateway (same key, the address moved to it, no state file)
# and roaming clients that keep sending: seconds from the replacement up
# until every client's traffic flows again, with the fleet's shared state
# (WGHOOKS_TAKEOVER: one initiation to each) against without it (the
# clients' own timers), in the same run, on a shared SQLite store and on
# the fleet's PostgreSQL (tests/bench_fleet_state_test.go,
# tests/bench_fleet_pg_takeover_test.go; in process, loopback UDP, plain
# upstream clients; PostgreSQL started by the benchmark, internal/pgtest).
# Goal: <= 1 s with the shared state, on both stores.
#
#   CLIENTS=8 CAP=30s scripts/bench/fleet.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

CLIENTS=${CLIENTS:-8}
CAP=${CAP:-30s}
out=$(WGTEST_BENCH_FLEET_CLIENTS=$CLIENTS WGTEST_BENCH_FLEET_CAP=$CAP go test -count=1 -run '^$' \
	-bench '^BenchmarkFleet(PG)?Takeover$' -benchtime 1x -timeout 15m ./tests 2>&1)

echo "replacement gateway, $CLIENTS roaming clients: seconds from the replacement up until every client is back (cut off at $CAP)"
awk -v cap="$CAP" '
	/^BenchmarkFleet(PG)?Takeover\// {
		split($1, p, "/"); impl = p[2]; sub(/-[0-9]+$/, "", impl)
		store = (p[1] == "BenchmarkFleetPGTakeover") ? "PostgreSQL" : "SQLite"
		for (i = 2; i <= NF; i++) {
			if ($(i+1) == "s/all-back") secs[store, impl] = $i
			if ($(i+1) == "back") back[store, impl] = $i
		}
	}
	function show(store,    w, u, ws, us, ratio, goal) {
		if (!((store, "shared-state") in secs) || !((store, "no-state") in secs)) { printf "%s: no benchmark results\n", store; return 0 }
		w = secs[store, "shared-state"]; u = secs[store, "no-state"]
		ws = (back[store, "shared-state"] == 1) ? sprintf("%.3f s", w) : sprintf("> %s", cap)
		us = (back[store, "no-state"] == 1) ? sprintf("%.3f s", u) : sprintf("> %s", cap)
		ratio = (w > 0) ? sprintf("%s%.0fx", (back[store, "no-state"] == 1) ? "" : ">", u / w) : "-"
		goal = (back[store, "shared-state"] == 1 && w <= 1) ? "met" : "MISSED"
		printf "%-10s %-18s %12s\n%-10s %-18s %12s\n%-10s %-18s %12s  goal <= 1 s: %s\n", store, "with shared state", ws, store, "without", us, store, "ratio", ratio, goal
		return goal == "met"
	}
	END {
		ok = show("SQLite")
		ok = show("PostgreSQL") && ok
		exit ok ? 0 : 1
	}
' <<<"$out" || { echo "$out" | grep -E '^(Benchmark|FAIL|---|ok)|SKIP|skipping' >&2; exit 1; }

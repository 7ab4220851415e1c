#!/usr/bin/env bash
# Server restart: seconds from the new server being up (configured, link
# up) to the first packet through, per scenario, wghooks against plain
# upstream in the same run (tests/bench_restart_test.go; in process, real
# UDP on loopback, the client is always plain upstream). Goal: <= 1 s for
# wghooks in every scenario. Upstream is cut off at CAP.
#
#   CAP=30s scripts/bench/restart.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

CAP=${CAP:-30s}
out=$(WGTEST_BENCH_RESTART_CAP=$CAP go test -run '^$' -bench '^BenchmarkRestartRecovery$' -benchtime 1x -count 1 -timeout 20m ./tests)

echo "server restart: seconds from the new server up to the first packet through (upstream cut off at $CAP)"
awk -v cap="$CAP" '
	BEGIN {
		what["a"] = "(a) client endpoint configured on the server"
		what["b"] = "(b) roaming client, endpoint in the state file"
		what["c"] = "(c) client only sends keepalives"
		what["d"] = "(d) client idle, then sends"
		what["e"] = "(e) just-in-time peer (upstream: no endpoint)"
		printf "%-50s %10s %12s %10s  %s\n", "scenario", "wghooks", "upstream", "ratio", "goal <= 1 s"
	}
	/^BenchmarkRestartRecovery\// {
		split($1, p, "/"); sc = p[2]; impl = p[3]; sub(/-[0-9]+$/, "", impl)
		for (i = 2; i <= NF; i++) {
			if ($(i+1) == "s/first-packet") secs[sc "/" impl] = $i
			if ($(i+1) == "recovered") rec[sc "/" impl] = $i
		}
		if (!(sc in seen)) { seen[sc] = 1; order[++n] = sc }
	}
	END {
		fail = 0
		for (i = 1; i <= n; i++) {
			sc = order[i]; w = secs[sc "/wghooks"]; u = secs[sc "/upstream"]
			ws = (rec[sc "/wghooks"] == 1) ? sprintf("%.3f s", w) : sprintf("> %s", cap)
			us = (rec[sc "/upstream"] == 1) ? sprintf("%.3f s", u) : sprintf("> %s", cap)
			ratio = (w > 0) ? sprintf("%s%.0fx", (rec[sc "/upstream"] == 1) ? "" : ">", u / w) : "-"
			goal = (rec[sc "/wghooks"] == 1 && w <= 1) ? "met" : "MISSED"
			if (goal != "met") fail = 1
			printf "%-50s %10s %12s %10s  %s\n", what[sc], ws, us, ratio, goal
		}
		if (n == 0) { print "no benchmark results"; fail = 1 }
		exit fail
	}
' <<<"$out" || { echo "$out" | grep -E '^(Benchmark|FAIL|---|ok)' >&2; exit 1; }

#!/usr/bin/env bash
# Failover behind a flow-affine UDP load balancer: seconds from the death
# of the backend carrying a client's flow to the first packet through the
# surviving backend, for wghooks clients (flow escape) and a plain
# upstream client, in the same run. In process: netstack TUNs, loopback
# UDP, no root. Through the test balancer (internal/lbsim) and, beside it,
# through Debian's nginx stream proxy (skipped when nginx is missing).
# Takes about three minutes.
#
#   RUNS=3 scripts/bench/ha.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(WGTEST_BENCH_HA=1 RUNS=${RUNS:-3} go test -count=1 -v -timeout 15m -run '^TestBenchHA(Failover|Nginx)$' ./tests 2>&1)
status=$?
if ((status != 0)); then
	printf '%s\n' "$out" | grep -e '^ha:' -e 'FAIL' -e 'Error' -e '_test.go' | grep -v 'log.go'
	exit "$status"
fi
printf '%s\n' "$out" | sed -n 's/^ha: //p'

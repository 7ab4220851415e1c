#!/usr/bin/env bash
# Endpoints that heal: seconds from a path failure to the first packet
# through, for a wghooks client with a hostname endpoint and a plain
# upstream client, in the same run (in process, no root): the server's
# IPv6 address dies while the tunnel is idle, and while pings flow. Then,
# with root, the two-uplink netns scenario: time from the primary route
# coming back to the server seeing the client on it, with lost pings
# counted, for wghooks, wghooks without its route watcher, and upstream.
#
#   RUNS=3 scripts/bench/endpoints.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(WGTEST_BENCH_ENDPOINTS=1 RUNS=${RUNS:-3} go test -count=1 -v -timeout 15m -run '^TestBenchEndpoints$' ./tests 2>&1)
status=$?
if ((status != 0)); then
	printf '%s\n' "$out" | grep -e '^endpoints:' -e 'FAIL' -e '_test.go' | grep -v 'log.go'
	exit "$status"
fi
printf '%s\n' "$out" | sed -n 's/^endpoints: //p'

if [[ $EUID -ne 0 || ! -c /dev/net/tun ]]; then
	echo "route restore: skipped: needs root and /dev/net/tun (network namespaces)"
	exit 0
fi
out=$(go test -count=1 -v -timeout 10m -run '^TestNetnsEndpointsRouteRestore$' ./tests 2>&1)
status=$?
echo "route restore (two uplinks, primary back; goal <= 1 s, no lost ping):"
printf '%s\n' "$out" | grep -e 'back on the primary' -e 'stayed on the backup' -e 'upstream: moved' -e '^--- FAIL' | sed 's/^ *endpoints_netns_test.go:[0-9]*: /  /'
exit "$status"

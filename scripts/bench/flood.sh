#!/usr/bin/env bash
# Bogus-handshake flood (tests/bench_flood_test.go): a known peer's TCP
# throughput through a just-in-time gateway while a second process floods
# it with random bytes, valid-mac1 garbage, genuine initiations from keys
# the provider does not know and replays of the peer's real initiation,
# against the same stream unflooded; plain upstream (peer preloaded) the
# same way in the same run. In process: netstack TUNs, loopback UDP, no
# root. About 45 s per rate.
#
#   HARD_FLOOD_RATES="1000 5000 20000" HARD_FLOOD_ROUNDS=4 HARD_FLOOD_SECONDS=2 scripts/bench/flood.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
status=0
for pps in ${HARD_FLOOD_RATES:-1000 5000 20000}; do
	echo "--- flood at $pps packets/s"
	out=$(HARD_FLOOD_PPS=$pps go test -count=1 -timeout 10m -run '^$' -benchtime 1x \
		-bench '^BenchmarkHardeningFlood$' ./tests 2>&1)
	rc=$?
	((rc == 0)) || status=$rc
	printf '%s\n' "$out" | grep -E '^Benchmark|^ok|FAIL|bench_flood_test' | tr '\t' ' ' | tr -s ' '
done
exit "$status"

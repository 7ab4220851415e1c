#!/usr/bin/env bash
# Bogus-handshake flood (tests/bench_flood_test.go): a known peer's TCP
# throughput through a just-in-time gateway while a second process floods
# it with random bytes, valid-mac1 garbage, genuine initiations from keys
# the provider does not know and replays of the peer's real initiation,
# against the same stream unflooded; plain upstream (peer preloaded) the
# same way in the same run. In process: netstack TUNs, loopback UDP, no
# root. About 45 s per rate. As root, the flood also runs spoofing the
# known peer's own address (raw socket) at HARD_FLOOD_SPOOF_RATES.
#
#   HARD_FLOOD_RATES="1000 5000 20000" HARD_FLOOD_SPOOF_RATES="5000" \
#   HARD_FLOOD_ROUNDS=4 HARD_FLOOD_SECONDS=2 scripts/bench/flood.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
status=0
run() { # pps spoof
	out=$(HARD_FLOOD_PPS=$1 HARD_FLOOD_SPOOF=$2 go test -count=1 -timeout 10m -run '^$' -benchtime 1x \
		-bench '^BenchmarkHardeningFlood$' ./tests 2>&1)
	rc=$?
	((rc == 0)) || status=$rc
	printf '%s\n' "$out" | grep -E '^Benchmark|^ok|FAIL|SKIP|bench_flood_test' | tr '\t' ' ' | tr -s ' '
}
for pps in ${HARD_FLOOD_RATES:-1000 5000 20000}; do
	echo "--- flood at $pps packets/s"
	run "$pps" 0
done
if [ "$(id -u)" = 0 ]; then
	for pps in ${HARD_FLOOD_SPOOF_RATES:-5000}; do
		echo "--- flood at $pps packets/s, spoofing the known peer's address"
		run "$pps" 1
	done
else
	echo "--- spoofed flood skipped: needs root (raw socket)"
fi
exit "$status"

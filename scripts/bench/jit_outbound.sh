#!/usr/bin/env bash
# Just-in-time outbound side, each figure against plain upstream in the
# same run (tests/bench_jit_outbound_test.go). In process: netstack TUNs,
# loopback UDP, no root. Takes about half a minute.
#
#   first packet   the gateway's first packet to a client it does not hold
#                  to its echo: lookup by address in SQLite, install,
#                  handshake by the gateway (p50, p99); upstream with the
#                  client preloaded
#   throughput     TCP through a pair with the outbound side on (its read
#                  filter sees every packet), one with it off, upstream
#
#   JIT_OUTBOUND_SAMPLES=50 scripts/bench/jit_outbound.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(go test -count=1 -timeout 10m -run '^$' -benchtime 1x \
	-bench '^BenchmarkJITOutboundFirstPacket$' ./tests 2>&1)
status=$?
tp=$(go test -count=1 -timeout 10m -run '^$' -benchtime 30x \
	-bench '^BenchmarkJITOutboundThroughput$' ./tests 2>&1)
tpstatus=$?
((status != 0)) || status=$tpstatus
printf '%s\n%s\n' "$out" "$tp" | grep -E '^Benchmark|^ok|FAIL|bench_jit_outbound_test'
exit "$status"

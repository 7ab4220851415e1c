#!/usr/bin/env bash
# In-process netstack pair throughput: TCP bulk data through a tunnel of
# wghooks devices and one of plain upstream devices, alternating chunk by
# chunk in one run (tests/bench_pair_test.go). Prints each side's MB/s and
# the ratio wghooks/upstream. No root needed.
#
#   COUNT=3 BENCHTIME=40x scripts/bench/pair.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -count="${COUNT:-3}" -run '^$' -bench '^BenchmarkPairThroughput$' \
	-benchtime "${BENCHTIME:-40x}" ./tests | grep -E '^Benchmark|^ok|FAIL'

#!/usr/bin/env bash
# Scraping /metrics at METRICS_BENCH_PEERS installed peers (default 10,000;
# ops/bench_test.go): ms and bytes per scrape (served plain and gzip, and
# allocated), the part spent reading upstream's counters, and the slowest
# ping through the tunnel, `wg show` and `wg set` with scrapes running
# back to back against none. In process, no root.
#
#   METRICS_BENCH_PEERS=10000 scripts/bench/metrics.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
# pipefail: the script fails when the benchmark does.
go test -count=1 -timeout 10m -run '^$' -benchtime 10x -v -bench '^BenchmarkMetricsScrape$' ./ops 2>&1 |
	grep -E '^Benchmark.*[0-9] |^ok|FAIL|_test.go|panic' | tr '\t' ' ' | tr -s ' '

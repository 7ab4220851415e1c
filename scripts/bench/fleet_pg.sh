#!/usr/bin/env bash
# The fleet's PostgreSQL store (tests/bench_fleet_pg_test.go), each
# figure against its counterpart in the same run. Starts PostgreSQL
# servers of its own (internal/pgtest); in process otherwise.
#
#   first contact   a new client's first packet to its echo: peer from
#                   PostgreSQL vs SQLite vs upstream preloaded (p50, p99;
#                   goal PostgreSQL <= 1.2x SQLite)
#   removal         a key held by three gateways removed from the store:
#                   until the last one cut it (p50, p99; goal p99 <= 1 s)
#   scale           a 10,000,000-peer store generated in SQL: gateway
#                   start, lookup p99 by key and address, installs (the
#                   fill takes about 5 minutes on a 2-core machine)
#   mass arrival    JIT_MASS_CLIENTS (here 10,000) new clients at once,
#                   peers provisioned per second from PostgreSQL vs
#                   upstream's handshakes per second, clients preloaded
#
#   FLEET_PG_FIRST_CONTACTS=100 FLEET_PG_REMOVALS=50 FLEET_PG_SCALE=10000000 scripts/bench/fleet_pg.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
export FLEET_PG_SCALE=${FLEET_PG_SCALE:-10000000}
export JIT_MASS_CLIENTS=${JIT_MASS_CLIENTS:-10000}
go test -count=1 -timeout 60m -run '^$' -benchtime 1x \
	-bench '^BenchmarkFleetPG(FirstContact|Removal|Scale|MassArrival)$' ./tests 2>&1 |
	grep -E '^Benchmark|^ok|FAIL|bench_(fleet_pg|jit_mass)_test|SKIP' | grep -v 'round [0-9]'
exit "${PIPESTATUS[0]}"

#!/usr/bin/env bash
# Just-in-time peers, each figure against plain upstream in the same run
# (tests/bench_jit_test.go). In process: netstack TUNs, loopback UDP, no
# root. Takes about two minutes.
#
#   first contact      a new client's first packet to its echo, peer from
#                      SQLite on first contact (p50, p99, retransmits);
#                      upstream with the peer preloaded
#   known-peer rate    handshakes/s of known peers, ours (JIT on) and
#                      upstream answering at the same time; ratio
#   identification     authenticated peer-miss identifications/s/core
#   mass arrival       JIT_MASS_CLIENTS (here 10,000) new clients at once,
#                      each from its own loopback address: peers provisioned
#                      per second from SQLite vs upstream's handshakes per
#                      second with the same clients preloaded; ratio
#   scale              1,000,000-peer store: start-up, RSS with 10,000
#                      active; upstream preloading 65,536 peers
#
#   JIT_FIRST_CONTACTS=100 JIT_HS_ROUNDS=10 JIT_SCALE_STORE=1000000 JIT_MASS_CLIENTS=10000 scripts/bench/jit.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
export JIT_MASS_CLIENTS=${JIT_MASS_CLIENTS:-10000}
out=$(go test -count=1 -timeout 20m -run '^$' -benchtime 1x \
	-bench '^BenchmarkJIT(FirstContact|KnownPeerHandshakes|Scale|MassArrival)$' ./tests 2>&1)
status=$?
id=$(go test -count=1 -run '^$' -benchtime 2s -bench '^BenchmarkJITPeerMissIdentify$' ./tests 2>&1)
idstatus=$?
((status != 0)) || status=$idstatus
printf '%s\n%s\n' "$out" "$id" | grep -E '^Benchmark|^ok|FAIL|bench_jit_(mass_)?test' | grep -v 'round [0-9]'
exit "$status"

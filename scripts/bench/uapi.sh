#!/usr/bin/env bash
# Control-socket storm (tests/bench_uapi_test.go): the live heap that every
# connection the UAPI server allows (64) adds while each streams a large
# set transaction at once (two past MaxTransaction, two stopping midway
# and never finishing, one doing gets), against HeldBudget, and plain
# upstream's UAPI server (IpcHandle) with the same clients in the same run
# (without the stalled ones: upstream holds its configuration lock for a
# whole transaction, so one that never finishes blocks every client). In
# process, no root. About 10 s at the default scale; HARD_UAPI_SCALE=1
# makes every ordinary transaction maximal (about a minute).
#
#   HARD_UAPI_SCALE=16 scripts/bench/uapi.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(go test -count=1 -timeout 10m -run '^$' -benchtime 1x -v \
	-bench '^BenchmarkHardeningUAPIStorm$' ./tests 2>&1)
status=$?
printf '%s\n' "$out" | grep -E '^Benchmark.*[0-9] |^ok|FAIL|bench_uapi_test' | tr '\t' ' ' | tr -s ' '
exit "$status"

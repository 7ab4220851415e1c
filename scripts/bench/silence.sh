#!/usr/bin/env bash
# No false alarms: ten minutes of pings every 100 ms through a poor path
# (5 % loss each way, 50 ms ± 30 ms, then five times slower), counting
# endpoint failovers and flow escapes (both must be 0), lost pings and the
# probe handshakes the silence detection sent. In process, no root.
#
#   SOAK=10m scripts/bench/silence.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(WGTEST_SILENCE_SOAK=${SOAK:-10m} go test -count=1 -v -timeout 30m -run '^TestSilenceNoFalseAlarms$' ./tests 2>&1)
status=$?
printf '%s\n' "$out" | grep -e '^silence:' -e '^--- FAIL' -e 'silence_test.go' | sed 's/^silence: //'
exit "$status"

#!/usr/bin/env bash
# Runs every Fuzz* target in the module for FUZZTIME each (default 30s).
# Crashers land in the package's testdata/fuzz/ and then run as regression
# cases in every `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-30s}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  pkg=./$(dirname "${f#./}")
  for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "== $pkg $name ($t)"
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -fuzzminimizetime 2000x "$pkg"
  done
done

#!/usr/bin/env bash
# Builds and vets the module for every platform upstream builds for:
# linux, darwin, freebsd, openbsd and windows, amd64 and arm64. `go vet`
# type-checks every package with its test files (so Linux-only test code
# must carry a build tag); `go build` links the commands. Part of
# `make test`; the go build cache makes a rerun cheap.
#
#   scripts/cross.sh                          all ten targets
#   TARGETS="windows/amd64" scripts/cross.sh  some of them
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
TARGETS=${TARGETS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 freebsd/amd64 freebsd/arm64 openbsd/amd64 openbsd/arm64 windows/amd64 windows/arm64"}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

failed=()
for target in $TARGETS; do
	os=${target%/*} arch=${target#*/}
	start=$(date +%s)
	# Commands into a scratch directory (linked, then thrown away); every
	# other package compiled; then vet, test files included.
	if GOOS=$os GOARCH=$arch "$GO" build -o "$out/" ./... &&
		GOOS=$os GOARCH=$arch "$GO" vet ./...; then
		echo "cross: $target ok ($(($(date +%s) - start)) s)"
	else
		echo "cross: $target FAILED" >&2
		failed+=("$target")
	fi
	rm -rf "${out:?}"/*
done
if ((${#failed[@]})); then
	echo "cross: failed: ${failed[*]}" >&2
	exit 1
fi

#!/usr/bin/env bash
# Start-up time of wghooks' wireguard-go against upstream's wireguard-go
# built from the very module version wghooks depends on: from exec to the
# UAPI socket answering (`wg show IFACE` succeeds), in the foreground, in a
# network namespace.
#
# Each run starts one daemon of each (the order flips every round so drift
# hits both alike), polls with wg until it answers, and stops it. The script
# prints every figure, each median in ms and the ratio ours/upstream. Needs
# root, /dev/net/tun, iproute2, wireguard-tools and go; skips (exit 0)
# without root or /dev/net/tun.
#
#   RUNS=21 scripts/bench/startup.sh
set -euo pipefail
umask 077
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-21}

. scripts/bench/lib/daemons.sh
bench_require startup ip wg go

tmp=$(mktemp -d /tmp/wghooks-bench-XXXXXX)
tag=$$
ns=wghooks-bench-$tag
pid=
ifaces=()

cleanup() {
	set +e
	[[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	for iface in "${ifaces[@]}"; do rm -f "/var/run/wireguard/$iface.sock"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_build_daemons "$tmp"

ip netns add "$ns"

# measure BIN IFACE: sets ms to the time from exec of `BIN -f IFACE` to its
# UAPI socket answering, then stops it. (Not run in a subshell, so pid and
# ifaces stay visible to cleanup.)
measure() {
	local bin=$1 iface=$2 start end i
	ifaces+=("$iface")
	start=$(date +%s%N)
	LOG_LEVEL=error WGHOOKS_STATE_FILE="$tmp/$iface.json" \
		ip netns exec "$ns" "$bin" -f "$iface" >"$tmp/$iface.log" 2>&1 &
	pid=$!
	for ((i = 0; ; i++)); do
		wg show "$iface" >/dev/null 2>&1 && break
		if ((i > 20000)) || ! kill -0 "$pid" 2>/dev/null; then
			echo "startup: $bin did not come up as $iface:" >&2
			cat "$tmp/$iface.log" >&2
			exit 1
		fi
	done
	end=$(date +%s%N)
	kill "$pid"
	wait "$pid" || true
	pid=
	rm -f "/var/run/wireguard/$iface.sock"
	ms=$(awk -v d=$((end - start)) 'BEGIN { printf "%.1f", d / 1e6 }')
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "runs: $RUNS, alternating"
ours=()
upstream=()
for ((r = 1; r <= RUNS; r++)); do
	if ((r % 2)); then order=(o u); else order=(u o); fi
	for impl in "${order[@]}"; do
		if [[ $impl == o ]]; then
			measure "$tmp/wireguard-go" "wgso$tag$r"
			v=$ms
			ours+=("$v")
			echo "  run $r ours:     $v ms"
		else
			measure "$tmp/wireguard-go-upstream" "wgsu$tag$r"
			v=$ms
			upstream+=("$v")
			echo "  run $r upstream: $v ms"
		fi
	done
done

mo=$(printf '%s\n' "${ours[@]}" | median)
mu=$(printf '%s\n' "${upstream[@]}" | median)
echo "median ours:     $mo ms"
echo "median upstream: $mu ms"
awk -v o="$mo" -v u="$mu" 'BEGIN { printf "ratio ours/upstream: %.2f (goal <= 1.2)\n", o / u }'

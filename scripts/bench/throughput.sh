#!/usr/bin/env bash
# Tunnel throughput of wghooks' wireguard-go against upstream's wireguard-go
# built from the very module version wghooks depends on.
#
# Two network namespaces joined by a veth carry two tunnels at once: one
# with our daemon at both ends, one with upstream's. iperf3 then measures
# them in alternating runs (the order flips every round so drift hits both
# alike), and the script prints every figure, each median and the ratio
# ours/upstream. Needs root, /dev/net/tun, iproute2, wireguard-tools, iperf3
# and go; skips (exit 0) without root or /dev/net/tun.
#
#   RUNS=5 SECS=5 scripts/bench/throughput.sh
set -euo pipefail
umask 077
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-5}
SECS=${SECS:-5}

. scripts/bench/lib/daemons.sh
bench_require throughput ip wg iperf3 go

tmp=$(mktemp -d /tmp/wghooks-bench-XXXXXX)
tag=$$
nsA=wghooks-bench-$tag-a
nsB=wghooks-bench-$tag-b
pids=()
ifaces=()

cleanup() {
	set +e
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
	for ns in "$nsA" "$nsB"; do ip netns del "$ns" 2>/dev/null; done
	for iface in "${ifaces[@]}"; do rm -f "/var/run/wireguard/$iface.sock"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_build_daemons "$tmp"

ip netns add "$nsA"
ip netns add "$nsB"
ip link add veth0 netns "$nsA" type veth peer name veth0 netns "$nsB"
ip -n "$nsA" addr add 198.18.0.1/24 dev veth0
ip -n "$nsB" addr add 198.18.0.2/24 dev veth0
for ns in "$nsA" "$nsB"; do
	ip -n "$ns" link set lo up
	ip -n "$ns" link set veth0 up
done

# start_daemon NS BIN IFACE: runs BIN in the foreground in NS and waits for
# its UAPI socket.
start_daemon() {
	local ns=$1 bin=$2 iface=$3 i
	ifaces+=("$iface")
	LOG_LEVEL=error ip netns exec "$ns" "$bin" -f "$iface" >"$tmp/$iface.log" 2>&1 &
	pids+=($!)
	for ((i = 0; i < 200; i++)); do
		[[ -S /var/run/wireguard/$iface.sock ]] && ip -n "$ns" link show "$iface" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "throughput: $bin did not come up as $iface:" >&2
	cat "$tmp/$iface.log" >&2
	exit 1
}

# tunnel NAME BIN PORT SUBNET: a tunnel between the namespaces with BIN at
# both ends, addresses SUBNET.1 (a) and SUBNET.2 (b).
tunnel() {
	local name=$1 bin=$2 port=$3 net=$4
	local ifA=wgb$name${tag}a ifB=wgb$name${tag}b
	wg genkey >"$tmp/$name-a.key"
	wg genkey >"$tmp/$name-b.key"
	start_daemon "$nsA" "$bin" "$ifA"
	start_daemon "$nsB" "$bin" "$ifB"
	ip netns exec "$nsA" wg set "$ifA" listen-port "$port" private-key "$tmp/$name-a.key" \
		peer "$(wg pubkey <"$tmp/$name-b.key")" endpoint "198.18.0.2:$port" allowed-ips "$net.2/32"
	ip netns exec "$nsB" wg set "$ifB" listen-port "$port" private-key "$tmp/$name-b.key" \
		peer "$(wg pubkey <"$tmp/$name-a.key")" endpoint "198.18.0.1:$port" allowed-ips "$net.1/32"
	ip -n "$nsA" addr add "$net.1/24" dev "$ifA"
	ip -n "$nsB" addr add "$net.2/24" dev "$ifB"
	ip -n "$nsA" link set "$ifA" up
	ip -n "$nsB" link set "$ifB" up
	ip netns exec "$nsA" ping -n -q -c 1 -w 10 "$net.2" >/dev/null
}

tunnel o "$tmp/wireguard-go" 51820 198.19.1
tunnel u "$tmp/wireguard-go-upstream" 51821 198.19.2

ip netns exec "$nsB" iperf3 -s >"$tmp/iperf3-server.log" 2>&1 &
pids+=($!)
for ((i = 0; i < 100; i++)); do
	[[ -n $(ip netns exec "$nsB" ss -Hltn 'sport = :5201') ]] && break
	sleep 0.1
done

# measure ADDR SECS: prints the receiver's Mbit/s of one iperf3 run.
measure() {
	ip netns exec "$nsA" timeout $(($2 + 30)) iperf3 -c "$1" -t "$2" -f m --connect-timeout 5000 |
		awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") print $(i - 1) }'
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "raw veth (reference): $(measure 198.18.0.2 2) Mbit/s"
echo "runs: $RUNS x ${SECS}s each, alternating"
ours=()
upstream=()
for ((r = 1; r <= RUNS; r++)); do
	if ((r % 2)); then order=(o u); else order=(u o); fi
	for impl in "${order[@]}"; do
		if [[ $impl == o ]]; then
			v=$(measure 198.19.1.2 "$SECS")
			ours+=("$v")
			echo "  run $r ours:     $v Mbit/s"
		else
			v=$(measure 198.19.2.2 "$SECS")
			upstream+=("$v")
			echo "  run $r upstream: $v Mbit/s"
		fi
		[[ -n $v ]] || { echo "throughput: iperf3 gave no figure" >&2; exit 1; }
	done
done

mo=$(printf '%s\n' "${ours[@]}" | median)
mu=$(printf '%s\n' "${upstream[@]}" | median)
echo "median ours:     $mo Mbit/s"
echo "median upstream: $mu Mbit/s"
awk -v o="$mo" -v u="$mu" 'BEGIN { printf "ratio ours/upstream: %.3f (goal >= 0.98)\n", o / u }'

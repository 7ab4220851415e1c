# Shared by the benchmark scripts that run our wireguard-go against
# upstream's in network namespaces. Sourced, not run (bench.sh runs only
# the scripts directly in scripts/bench/).

# bench_require NAME TOOL...: exits 0, saying NAME is skipped, without
# root or /dev/net/tun; exits 1 naming the first TOOL missing.
bench_require() {
	local name=$1 tool
	shift
	if [[ $EUID -ne 0 ]]; then
		echo "$name: skipped: needs root (network namespaces and TUN devices)"
		exit 0
	fi
	if [[ ! -c /dev/net/tun ]]; then
		echo "$name: skipped: needs /dev/net/tun"
		exit 0
	fi
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { echo "$name: missing $tool" >&2; exit 1; }
	done
}

# bench_build_daemons DIR: builds ours as DIR/wireguard-go and upstream's,
# from the very module version wghooks depends on, as
# DIR/wireguard-go-upstream, and says which is which.
bench_build_daemons() {
	local dir=$1 upstream_version
	upstream_version=$(go list -m -f '{{.Version}}' golang.zx2c4.com/wireguard)
	go build -o "$dir/wireguard-go" ./cmd/wireguard-go
	go build -o "$dir/wireguard-go-upstream" golang.zx2c4.com/wireguard
	echo "ours:     ./cmd/wireguard-go"
	echo "upstream: golang.zx2c4.com/wireguard $upstream_version (same module version)"
}

#!/usr/bin/env bash
# Installs the Debian packages the integration tests and benchmarks use,
# when any is missing. Without root or apt-get it says what is missing
# and carries on: the network-namespace and Prometheus tests then skip,
# saying why.
set -euo pipefail
need=()
command -v wg >/dev/null || need+=(wireguard-tools)
[ -x /usr/bin/wireguard-go ] || need+=(wireguard-go)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v prometheus >/dev/null || need+=(prometheus) # also promtool
# nginx with its stream module: the real UDP balancer of the HA tests.
[ -x /usr/sbin/nginx ] || need+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
# systemd-analyze verifies the shipped unit files.
command -v systemd-analyze >/dev/null || need+=(systemd)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-deps: missing ${need[*]} (need root and apt-get to install them)" >&2
  exit 0
fi
echo "install-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: otherwise a kernel image comes along.
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

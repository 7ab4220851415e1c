package tun

import (
	"fmt"
	"net/netip"

	wgtun "golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// DefaultMTU is upstream's default tunnel MTU.
const DefaultMTU = 1420

// NewNetstack creates an in-process TUN backed by gVisor's netstack with the
// given tunnel addresses, and the netstack handle to dial and listen on it.
// mtu 0 means DefaultMTU. It needs no privileges.
func NewNetstack(addrs []netip.Addr, mtu int) (wgtun.Device, *netstack.Net, error) {
	if len(addrs) == 0 {
		return nil, nil, fmt.Errorf("failed to create netstack tun: no addresses")
	}
	if mtu == 0 {
		mtu = DefaultMTU
	}
	dev, tnet, err := netstack.CreateNetTUN(addrs, nil, mtu)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create netstack tun %v: %w", addrs, err)
	}
	return dev, tnet, nil
}

package tun

import (
	"fmt"
	"net/netip"
	"os"
	"sync"

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
	return &netstackTUN{Device: dev}, tnet, nil
}

// netstackTUN closes upstream's netstack TUN only once no Write is inside
// it. Upstream's Close closes the channel that gVisor's replies are sent
// on, and a reply generated inline by a packet being written (an echo
// reply, a TCP ACK) could be sent on it as it closes: a data race, and a
// "send on closed channel" panic when the send had to wait for a reader.
type netstackTUN struct {
	wgtun.Device
	mu     sync.RWMutex // held for reading by each Write
	closed bool
}

func (t *netstackTUN) Write(bufs [][]byte, offset int) (int, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return 0, os.ErrClosed
	}
	return t.Device.Write(bufs, offset)
}

// Close waits for Writes in progress (their replies are read meanwhile by
// the device's TUN reader, which runs until Close), then closes the TUN.
func (t *netstackTUN) Close() error {
	t.mu.Lock()
	already := t.closed
	t.closed = true
	t.mu.Unlock()
	if already {
		return nil
	}
	return t.Device.Close()
}

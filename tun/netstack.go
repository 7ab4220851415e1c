package tun

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

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

// netstackTUN closes upstream's netstack TUN only once netstack has
// stopped answering. Upstream's Close closes the channel that gVisor's
// outbound packets are sent on, with nothing to order the close after
// those sends: a data race, and a "send on closed channel" panic when a
// send had to wait for a reader. Packets come two ways:
//
//   - inline, from a Write (an echo reply, a TCP ACK): Close waits for
//     Writes in progress and refuses new ones;
//   - from netstack's own goroutines (TCP segments it processes later,
//     resets from endpoints that closed, timers): with no more Writes,
//     these stop once what already arrived is answered, so Close waits
//     until the device's reader has taken none for closeQuiet (at most
//     closeWait). Each Read counts its packet atomically, which also
//     orders every send the reader took before the close.
//
// Only a netstack timer firing in the last moment before the close can
// still race; upstream's TUN gives no handle on its stack to stop them.
type netstackTUN struct {
	wgtun.Device
	mu     sync.RWMutex // held for reading by each Write
	closed bool
	reads  atomic.Uint64 // packets read
}

const (
	closeQuiet = 20 * time.Millisecond
	closeWait  = time.Second
)

func (t *netstackTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := t.Device.Read(bufs, sizes, offset)
	if n > 0 {
		t.reads.Add(1)
	}
	return n, err
}

func (t *netstackTUN) Write(bufs [][]byte, offset int) (int, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return 0, os.ErrClosed
	}
	return t.Device.Write(bufs, offset)
}

// Close refuses new Writes and waits for those in progress (their replies
// are read meanwhile by the device's TUN reader, which runs until Close),
// lets netstack finish answering, then closes the TUN.
func (t *netstackTUN) Close() error {
	t.mu.Lock()
	already := t.closed
	t.closed = true
	t.mu.Unlock()
	if already {
		return nil
	}
	for waited := time.Duration(0); waited < closeWait; waited += closeQuiet {
		n := t.reads.Load()
		time.Sleep(closeQuiet)
		if t.reads.Load() == n {
			break
		}
	}
	return t.Device.Close()
}

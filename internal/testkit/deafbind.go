package testkit

// DeafBind: a backend that dies the way a crashed host does, silently.

import (
	"sync/atomic"

	wgconn "golang.zx2c4.com/wireguard/conn"
)

// DeafBind wraps a bind and, once Cut, drops every datagram both ways
// while its socket stays open: what a peer sees of a host that crashed or
// vanished behind a partition. A closed socket would answer ICMP port
// unreachable instead, which a balancer may take as a cue to re-route;
// a dead machine sends nothing.
type DeafBind struct {
	wgconn.Bind
	cut     atomic.Bool
	Dropped atomic.Int64 // datagrams received and dropped since Cut
}

var _ wgconn.Bind = (*DeafBind)(nil)

// NewDeafBind wraps inner (nil: upstream's default bind).
func NewDeafBind(inner wgconn.Bind) *DeafBind {
	if inner == nil {
		inner = wgconn.NewDefaultBind()
	}
	return &DeafBind{Bind: inner}
}

// Unwrap returns the wrapped bind.
func (b *DeafBind) Unwrap() wgconn.Bind { return b.Bind }

// Cut drops everything from now on.
func (b *DeafBind) Cut() { b.cut.Store(true) }

// Open opens the wrapped bind; its receive functions drop what they read
// once the bind is cut.
func (b *DeafBind) Open(port uint16) ([]wgconn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	for i, fn := range fns {
		fns[i] = func(packets [][]byte, sizes []int, eps []wgconn.Endpoint) (int, error) {
			n, err := fn(packets, sizes, eps)
			if n > 0 && b.cut.Load() {
				b.Dropped.Add(int64(n))
				return 0, err
			}
			return n, err
		}
	}
	return fns, actual, err
}

// Send drops bufs once the bind is cut, and otherwise sends them.
func (b *DeafBind) Send(bufs [][]byte, ep wgconn.Endpoint) error {
	if b.cut.Load() {
		return nil
	}
	return b.Bind.Send(bufs, ep)
}

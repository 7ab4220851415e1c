package testkit

// CountingBind: a conn.Bind that counts the handshake messages crossing
// it, so a test can assert "at most one new handshake" or "who
// initiated".

import (
	"sync/atomic"

	wgconn "golang.zx2c4.com/wireguard/conn"

	"github.com/wghooks/wghooks/conn"
)

// CountingBind wraps a bind and counts the handshake initiations it sends
// and receives and the responses it receives. It changes nothing.
type CountingBind struct {
	wgconn.Bind
	InitSent, InitRecv, RespRecv atomic.Int64
	CookieRecv                   atomic.Int64 // cookie replies: the other side was under load
}

var _ wgconn.Bind = (*CountingBind)(nil)

// NewCountingBind wraps inner (nil: upstream's default bind).
func NewCountingBind(inner wgconn.Bind) *CountingBind {
	if inner == nil {
		inner = wgconn.NewDefaultBind()
	}
	return &CountingBind{Bind: inner}
}

// Unwrap returns the wrapped bind.
func (b *CountingBind) Unwrap() wgconn.Bind { return b.Bind }

// Open opens the wrapped bind and counts what its receive functions read.
func (b *CountingBind) Open(port uint16) ([]wgconn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	for i, fn := range fns {
		fns[i] = func(packets [][]byte, sizes []int, eps []wgconn.Endpoint) (int, error) {
			n, err := fn(packets, sizes, eps)
			for j := 0; j < n; j++ {
				switch {
				case sizes[j] == conn.MessageInitiationSize && packets[j][0] == conn.MessageInitiation:
					b.InitRecv.Add(1)
				case sizes[j] == conn.MessageResponseSize && packets[j][0] == conn.MessageResponse:
					b.RespRecv.Add(1)
				case sizes[j] == conn.MessageCookieReplySize && packets[j][0] == conn.MessageCookieReply:
					b.CookieRecv.Add(1)
				}
			}
			return n, err
		}
	}
	return fns, actual, err
}

// Send counts the initiations in bufs and sends them with the wrapped
// bind.
func (b *CountingBind) Send(bufs [][]byte, ep wgconn.Endpoint) error {
	for _, buf := range bufs {
		if len(buf) == conn.MessageInitiationSize && buf[0] == conn.MessageInitiation {
			b.InitSent.Add(1)
		}
	}
	return b.Bind.Send(bufs, ep)
}

// Initiations is every handshake initiation that crossed the bind, sent
// or received.
func (b *CountingBind) Initiations() int64 { return b.InitSent.Load() + b.InitRecv.Load() }

package floodgen

import (
	"sync"
	"sync/atomic"

	wgconn "golang.zx2c4.com/wireguard/conn"

	"github.com/wghooks/wghooks/conn"
)

// Recorder is a client's bind that supplies a flood's Replay: it keeps a
// copy of the first handshake initiation sent through it, and counts the
// initiations it sends and the cookie replies it receives (how many
// rounds a client needed to get through a flood).
type Recorder struct {
	wgconn.Bind
	inits, cookies atomic.Int64
	mu             sync.Mutex
	first          []byte
}

var _ wgconn.Bind = (*Recorder)(nil)

// NewRecorder wraps inner.
func NewRecorder(inner wgconn.Bind) *Recorder { return &Recorder{Bind: inner} }

// Unwrap returns the wrapped bind.
func (r *Recorder) Unwrap() wgconn.Bind { return r.Bind }

// Open opens the wrapped bind and counts the cookie replies its receive
// functions return.
func (r *Recorder) Open(port uint16) ([]wgconn.ReceiveFunc, uint16, error) {
	fns, actual, err := r.Bind.Open(port)
	for i, fn := range fns {
		fns[i] = func(packets [][]byte, sizes []int, eps []wgconn.Endpoint) (int, error) {
			n, err := fn(packets, sizes, eps)
			for j := 0; j < n; j++ {
				if sizes[j] == conn.MessageCookieReplySize && packets[j][0] == conn.MessageCookieReply {
					r.cookies.Add(1)
				}
			}
			return n, err
		}
	}
	return fns, actual, err
}

// Send counts and records initiations, then sends through the wrapped
// bind.
func (r *Recorder) Send(bufs [][]byte, ep wgconn.Endpoint) error {
	for _, buf := range bufs {
		if len(buf) == conn.MessageInitiationSize && buf[0] == conn.MessageInitiation {
			r.inits.Add(1)
			r.mu.Lock()
			if r.first == nil {
				r.first = append([]byte(nil), buf...)
			}
			r.mu.Unlock()
		}
	}
	return r.Bind.Send(bufs, ep)
}

// FirstInitiation returns a copy of the first initiation sent, or nil.
func (r *Recorder) FirstInitiation() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.first...)
}

// Initiations returns how many handshake initiations were sent.
func (r *Recorder) Initiations() int64 { return r.inits.Load() }

// CookieReplies returns how many cookie replies were received.
func (r *Recorder) CookieReplies() int64 { return r.cookies.Load() }

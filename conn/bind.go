package conn

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	wgconn "golang.zx2c4.com/wireguard/conn"
)

// Verdict is what a receive hook decides about one datagram.
type Verdict int

const (
	// Pass hands the datagram to the device unchanged.
	Pass Verdict = iota
	// Hold withholds the datagram from the device. The hook has copied what
	// it needs and may give it back later with Bind.Inject.
	Hold
)

// Hooks are the Bind's callbacks. A nil field does nothing.
type Hooks struct {
	// ReceiveTypes selects, as a bit mask (1<<MessageInitiation | ...),
	// which message types are shown to OnReceive. Zero shows none, which
	// keeps the receive path as cheap as upstream's.
	ReceiveTypes uint8

	// OnReceive is called on a receive goroutine for each datagram whose
	// type is selected by ReceiveTypes. packet is borrowed: it is valid only
	// during the call. It must not block and must not call into the device
	// (a device lock may be held while the bind is being reopened).
	OnReceive func(packet []byte, ep wgconn.Endpoint) Verdict

	// OnSend is called on the sending goroutine before each batch leaves.
	// bufs are borrowed; OnSend must not modify or keep them, must not
	// block, and must not call into the device.
	OnSend func(bufs [][]byte, ep wgconn.Endpoint)
}

// TypeMask returns the ReceiveTypes mask that selects the given types.
func TypeMask(types ...byte) uint8 {
	var m uint8
	for _, t := range types {
		if t < 8 {
			m |= 1 << t
		}
	}
	return m
}

// injectQueueLen bounds how many re-injected datagrams may wait for the
// device; past it Inject refuses rather than grow.
const injectQueueLen = 256

// ErrInjectQueueFull is returned by Inject when the device is not keeping up.
var ErrInjectQueueFull = errors.New("failed to inject datagram: queue full")

// ErrInjectOff is returned by Inject when the bind was opened without its
// injection ReceiveFunc (SetInject(false)).
var ErrInjectOff = errors.New("failed to inject datagram: injection off")

// Bind wraps an upstream wgconn.Bind. Datagrams pass through unchanged
// unless a hook asks otherwise. Open returns one extra ReceiveFunc that
// delivers datagrams given back with Inject, unless SetInject(false).
type Bind struct {
	inner wgconn.Bind
	hooks atomic.Pointer[Hooks]

	// rxBytes and txBytes count UDP payload bytes, one add per batch.
	rxBytes, txBytes atomic.Uint64

	// open guards the current open generation; nil while closed.
	open struct {
		sync.Mutex
		gen      *generation
		port     uint16
		noInject bool // Open leaves out the injection ReceiveFunc
	}
}

// generation is one Open..Close period. Inject and the injection
// ReceiveFunc belong to exactly one, so a stale ReceiveFunc from a previous
// Open always sees net.ErrClosed.
type generation struct {
	inject chan injected // nil when opened without injection
	closed chan struct{}
}

type injected struct {
	packet []byte
	ep     wgconn.Endpoint
}

var (
	_ wgconn.Bind                  = (*Bind)(nil)
	_ wgconn.BindSocketToInterface = (*Bind)(nil)
	_ wgconn.PeekLookAtSocketFd    = (*Bind)(nil)
)

// NewBind wraps inner. A nil inner means the default: StickyBind on Linux
// (stickybind_linux.go), upstream's default bind elsewhere.
func NewBind(inner wgconn.Bind) *Bind {
	if inner == nil {
		inner = defaultInnerBind()
	}
	return &Bind{inner: inner}
}

// Unwrap returns the wrapped bind.
func (b *Bind) Unwrap() wgconn.Bind { return b.inner }

// SetHooks replaces the hooks; nil removes them. Safe at any time.
func (b *Bind) SetHooks(h *Hooks) { b.hooks.Store(h) }

// Port returns the port of the current open generation, or 0 when closed.
func (b *Bind) Port() uint16 {
	b.open.Lock()
	defer b.open.Unlock()
	return b.open.port
}

// SetInject says whether Open adds the injection ReceiveFunc (the default)
// from the next Open on. Upstream gives every ReceiveFunc a goroutine and
// a full batch of message buffers (IdealBatchSize × 64 KiB, 8 MiB on
// Linux), allocated at every Up: a device none of whose features
// re-injects turns it off, and Inject then returns ErrInjectOff.
func (b *Bind) SetInject(on bool) {
	b.open.Lock()
	defer b.open.Unlock()
	b.open.noInject = !on
}

// Open opens the inner bind and wraps its receive functions.
func (b *Bind) Open(port uint16) ([]wgconn.ReceiveFunc, uint16, error) {
	b.open.Lock()
	defer b.open.Unlock()
	if b.open.gen != nil {
		return nil, 0, wgconn.ErrBindAlreadyOpen
	}
	fns, actual, err := b.inner.Open(port)
	if err != nil {
		return nil, 0, err
	}
	gen := &generation{closed: make(chan struct{})}
	wrapped := make([]wgconn.ReceiveFunc, 0, len(fns)+1)
	for _, fn := range fns {
		wrapped = append(wrapped, b.wrapReceive(fn))
	}
	if !b.open.noInject {
		gen.inject = make(chan injected, injectQueueLen)
		wrapped = append(wrapped, gen.receiveInjected)
	}
	b.open.gen = gen
	b.open.port = actual
	return wrapped, actual, nil
}

// Close closes the inner bind and ends the injection ReceiveFunc.
func (b *Bind) Close() error {
	b.open.Lock()
	defer b.open.Unlock()
	if b.open.gen != nil {
		close(b.open.gen.closed)
		b.open.gen = nil
		b.open.port = 0
	}
	return b.inner.Close()
}

// Inject gives a datagram to the device as if it had just been received
// from ep. packet is copied. Injected datagrams are not shown to hooks
// again.
func (b *Bind) Inject(packet []byte, ep wgconn.Endpoint) error {
	b.open.Lock()
	gen := b.open.gen
	b.open.Unlock()
	if gen == nil {
		return net.ErrClosed
	}
	if gen.inject == nil {
		return ErrInjectOff
	}
	p := append([]byte(nil), packet...)
	select {
	case gen.inject <- injected{packet: p, ep: ep}:
		return nil
	default:
		return ErrInjectQueueFull
	}
}

// receiveInjected is the extra ReceiveFunc: it blocks until a datagram is
// injected or the generation closes.
func (g *generation) receiveInjected(packets [][]byte, sizes []int, eps []wgconn.Endpoint) (int, error) {
	var in injected
	select {
	case in = <-g.inject:
	case <-g.closed:
		return 0, net.ErrClosed
	}
	n := 0
	for {
		sizes[n] = copy(packets[n], in.packet)
		eps[n] = in.ep
		n++
		if n == len(packets) {
			return n, nil
		}
		select {
		case in = <-g.inject:
		default:
			return n, nil
		}
	}
}

func (b *Bind) wrapReceive(fn wgconn.ReceiveFunc) wgconn.ReceiveFunc {
	return func(packets [][]byte, sizes []int, eps []wgconn.Endpoint) (int, error) {
		n, err := fn(packets, sizes, eps)
		total := 0
		for i := 0; i < n; i++ {
			total += sizes[i]
		}
		b.rxBytes.Add(uint64(total))
		h := b.hooks.Load()
		if h == nil || h.OnReceive == nil || h.ReceiveTypes == 0 {
			return n, err
		}
		for i := 0; i < n; i++ {
			if sizes[i] < 4 {
				continue
			}
			t := packets[i][0]
			if t >= 8 || h.ReceiveTypes&(1<<t) == 0 {
				continue
			}
			if h.OnReceive(packets[i][:sizes[i]], eps[i]) == Hold {
				sizes[i] = 0
			}
		}
		return n, err
	}
}

// Send shows the batch to OnSend, then sends it through the inner bind with
// ep unwrapped to the inner bind's own endpoint type.
func (b *Bind) Send(bufs [][]byte, ep wgconn.Endpoint) error {
	if h := b.hooks.Load(); h != nil && h.OnSend != nil {
		h.OnSend(bufs, ep)
	}
	b.countSent(bufs)
	return b.inner.Send(bufs, unwrapEndpoint(ep))
}

// SendInner sends through the inner bind without showing the batch to
// OnSend, for datagrams wghooks itself originates (probes, copies).
func (b *Bind) SendInner(bufs [][]byte, ep wgconn.Endpoint) error {
	b.countSent(bufs)
	return b.inner.Send(bufs, unwrapEndpoint(ep))
}

func (b *Bind) countSent(bufs [][]byte) {
	total := 0
	for _, buf := range bufs {
		total += len(buf)
	}
	b.txBytes.Add(uint64(total))
}

// Bytes returns the UDP payload bytes received and sent so far.
func (b *Bind) Bytes() (rx, tx uint64) { return b.rxBytes.Load(), b.txBytes.Load() }

// ParseEndpoint parses with the inner bind.
func (b *Bind) ParseEndpoint(s string) (wgconn.Endpoint, error) {
	return b.inner.ParseEndpoint(s)
}

// SetMark forwards to the inner bind.
func (b *Bind) SetMark(mark uint32) error { return b.inner.SetMark(mark) }

// BatchSize forwards to the inner bind.
func (b *Bind) BatchSize() int { return b.inner.BatchSize() }

// errUnsupported reports an optional interface the inner bind lacks.
func (b *Bind) errUnsupported(what string) error {
	return fmt.Errorf("failed to %s: inner bind %T does not support it: %w", what, b.inner, errors.ErrUnsupported)
}

// BindSocketToInterface4 forwards to the inner bind when it supports it.
func (b *Bind) BindSocketToInterface4(ifindex uint32, blackhole bool) error {
	if s, ok := b.inner.(wgconn.BindSocketToInterface); ok {
		return s.BindSocketToInterface4(ifindex, blackhole)
	}
	return b.errUnsupported("bind IPv4 socket to interface")
}

// BindSocketToInterface6 forwards to the inner bind when it supports it.
func (b *Bind) BindSocketToInterface6(ifindex uint32, blackhole bool) error {
	if s, ok := b.inner.(wgconn.BindSocketToInterface); ok {
		return s.BindSocketToInterface6(ifindex, blackhole)
	}
	return b.errUnsupported("bind IPv6 socket to interface")
}

// PeekLookAtSocketFd4 forwards to the inner bind when it supports it.
func (b *Bind) PeekLookAtSocketFd4() (int, error) {
	if s, ok := b.inner.(wgconn.PeekLookAtSocketFd); ok {
		return s.PeekLookAtSocketFd4()
	}
	return -1, b.errUnsupported("peek at IPv4 socket")
}

// PeekLookAtSocketFd6 forwards to the inner bind when it supports it.
func (b *Bind) PeekLookAtSocketFd6() (int, error) {
	if s, ok := b.inner.(wgconn.PeekLookAtSocketFd); ok {
		return s.PeekLookAtSocketFd6()
	}
	return -1, b.errUnsupported("peek at IPv6 socket")
}

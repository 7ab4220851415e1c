package conn

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
)

// innerEndpoint is the test inner bind's own endpoint type.
type innerEndpoint struct{ addr netip.AddrPort }

func (e innerEndpoint) ClearSrc()           {}
func (e innerEndpoint) SrcToString() string { return "" }
func (e innerEndpoint) DstToString() string { return e.addr.String() }
func (e innerEndpoint) DstToBytes() []byte  { b, _ := e.addr.MarshalBinary(); return b }
func (e innerEndpoint) DstIP() netip.Addr   { return e.addr.Addr() }
func (e innerEndpoint) SrcIP() netip.Addr   { return netip.Addr{} }

// wrappedTestEndpoint wraps another endpoint, as wghooks features do to carry
// their own state.
type wrappedTestEndpoint struct {
	wgconn.Endpoint
	tag string
}

func (e wrappedTestEndpoint) Unwrap() wgconn.Endpoint { return e.Endpoint }

// innerDatagram is one datagram the fake inner bind "receives".
type innerDatagram struct {
	packet []byte
	ep     wgconn.Endpoint
}

type innerSent struct {
	bufs [][]byte
	ep   wgconn.Endpoint
}

// innerBind is an inner bind driven by the test: each value sent on rx is
// one batch returned by its single ReceiveFunc; Send records what it is
// given and, like StdNetBind, refuses endpoints of another type.
type innerBind struct {
	rx      chan []innerDatagram
	openErr error

	mu     sync.Mutex
	closed chan struct{}
	opens  int
	closes int
	mark   uint32
	sent   []innerSent
}

func newInnerBind() *innerBind { return &innerBind{rx: make(chan []innerDatagram, 16)} }

func (f *innerBind) Open(port uint16) ([]wgconn.ReceiveFunc, uint16, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openErr != nil {
		return nil, 0, f.openErr
	}
	f.opens++
	if port == 0 {
		port = 40000
	}
	closed := make(chan struct{})
	f.closed = closed
	fn := func(packets [][]byte, sizes []int, eps []wgconn.Endpoint) (int, error) {
		select {
		case <-closed:
			return 0, net.ErrClosed
		case batch := <-f.rx:
			for i, d := range batch {
				sizes[i] = copy(packets[i], d.packet)
				eps[i] = d.ep
			}
			return len(batch), nil
		}
	}
	return []wgconn.ReceiveFunc{fn}, port, nil
}

func (f *innerBind) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closes++
	if f.closed != nil {
		close(f.closed)
		f.closed = nil
	}
	return nil
}

func (f *innerBind) SetMark(mark uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mark = mark
	return nil
}

func (f *innerBind) Send(bufs [][]byte, ep wgconn.Endpoint) error {
	if _, ok := ep.(innerEndpoint); !ok {
		return wgconn.ErrWrongEndpointType
	}
	cp := make([][]byte, len(bufs))
	for i, b := range bufs {
		cp[i] = append([]byte(nil), b...)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, innerSent{cp, ep})
	return nil
}

func (f *innerBind) ParseEndpoint(s string) (wgconn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return innerEndpoint{ap}, nil
}

func (f *innerBind) BatchSize() int { return 4 }

// innerBindExtra adds the optional interfaces to innerBind.
type innerBindExtra struct {
	*innerBind
	calls []string
}

func (f *innerBindExtra) BindSocketToInterface4(idx uint32, blackhole bool) error {
	f.calls = append(f.calls, "bind4")
	if idx != 7 || !blackhole {
		return errors.New("wrong arguments")
	}
	return nil
}

func (f *innerBindExtra) BindSocketToInterface6(idx uint32, blackhole bool) error {
	f.calls = append(f.calls, "bind6")
	if idx != 8 || blackhole {
		return errors.New("wrong arguments")
	}
	return nil
}

func (f *innerBindExtra) PeekLookAtSocketFd4() (int, error) { return 14, nil }
func (f *innerBindExtra) PeekLookAtSocketFd6() (int, error) { return 16, nil }

// bindMsg builds a datagram of WireGuard type typ and size n, tagged with b.
func bindMsg(typ byte, n int, b byte) []byte {
	p := make([]byte, n)
	p[0] = typ
	for i := 4; i < n; i++ {
		p[i] = b
	}
	return p
}

// bindRecvBufs allocates a receive batch of n buffers.
func bindRecvBufs(n int) ([][]byte, []int, []wgconn.Endpoint) {
	packets := make([][]byte, n)
	for i := range packets {
		packets[i] = make([]byte, 2048)
	}
	return packets, make([]int, n), make([]wgconn.Endpoint, n)
}

// bindCallWithin calls fn and fails if it does not return within 5 s.
func bindCallWithin(t *testing.T, what string, fn func() (int, error)) (int, error) {
	t.Helper()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := fn()
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return within 5s", what)
		return 0, nil
	}
}

func bindOpen(t *testing.T, b *Bind, port uint16) []wgconn.ReceiveFunc {
	t.Helper()
	fns, _, err := b.Open(port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return fns
}

// TestBindPassthroughChannel carries datagrams both ways between two of
// our binds wrapping upstream's in-memory test binds, with no hooks.
func TestBindPassthroughChannel(t *testing.T) {
	inner := bindtest.NewChannelBinds()
	a, b := NewBind(inner[0]), NewBind(inner[1])
	fnsA, fnsB := bindOpen(t, a, 0), bindOpen(t, b, 0)
	if len(fnsA) != 3 || len(fnsB) != 3 {
		t.Fatalf("Open returned %d and %d receive funcs, want the inner two plus injection", len(fnsA), len(fnsB))
	}
	// ChannelBind routes by endpoint number: 1 is the other side's IPv4.
	toB, err := a.ParseEndpoint("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	toA, err := b.ParseEndpoint("127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from, to *Bind
		ep       wgconn.Endpoint
		recv     wgconn.ReceiveFunc
	}{{a, b, toB, fnsB[0]}, {b, a, toA, fnsA[0]}} {
		want := bindMsg(MessageTransport, 100, 0xab)
		if err := c.from.Send([][]byte{want}, c.ep); err != nil {
			t.Fatal(err)
		}
		packets, sizes, eps := bindRecvBufs(1)
		n, err := bindCallWithin(t, "receive", func() (int, error) { return c.recv(packets, sizes, eps) })
		if err != nil || n != 1 || !bytes.Equal(packets[0][:sizes[0]], want) || eps[0] == nil {
			t.Fatalf("received n=%d err=%v packet %x, want the sent datagram", n, err, packets[0][:sizes[0]])
		}
	}
	if rx, tx := a.Bytes(); rx != 100 || tx != 100 {
		t.Errorf("a.Bytes() = %d, %d, want 100, 100", rx, tx)
	}
}

// TestBindForwardsPlainMethods checks the methods that go straight to the
// inner bind, and Port across Open and Close.
func TestBindForwardsPlainMethods(t *testing.T) {
	f := newInnerBind()
	b := NewBind(f)
	if b.Unwrap() != f {
		t.Fatal("Unwrap does not return the inner bind")
	}
	if b.BatchSize() != 4 {
		t.Errorf("BatchSize = %d, want the inner 4", b.BatchSize())
	}
	if err := b.SetMark(0x42); err != nil || f.mark != 0x42 {
		t.Errorf("SetMark: err %v, inner mark %#x", err, f.mark)
	}
	ep, err := b.ParseEndpoint("198.18.0.1:51820")
	if err != nil || ep != (innerEndpoint{netip.MustParseAddrPort("198.18.0.1:51820")}) {
		t.Errorf("ParseEndpoint = %v, %v", ep, err)
	}
	if _, err := b.ParseEndpoint("not an endpoint"); err == nil {
		t.Error("ParseEndpoint accepted garbage")
	}
	if b.Port() != 0 {
		t.Errorf("Port before Open = %d", b.Port())
	}
	if _, port, err := b.Open(51820); err != nil || port != 51820 || b.Port() != 51820 {
		t.Fatalf("Open(51820) = %d, %v; Port() = %d", port, err, b.Port())
	}
	if _, _, err := b.Open(51820); !errors.Is(err, wgconn.ErrBindAlreadyOpen) {
		t.Errorf("second Open: %v, want ErrBindAlreadyOpen", err)
	}
	if err := b.Close(); err != nil || b.Port() != 0 || f.closes != 1 {
		t.Errorf("Close: %v, Port %d, inner closes %d", err, b.Port(), f.closes)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// A failing inner Open leaves the bind closed and reusable.
	f.openErr = errors.New("port in use")
	if _, _, err := b.Open(1); err == nil || b.Port() != 0 {
		t.Fatalf("Open with failing inner: err %v, Port %d", err, b.Port())
	}
	if err := b.Inject(bindMsg(MessageInitiation, 148, 1), innerEndpoint{}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Inject after failed Open: %v, want net.ErrClosed", err)
	}
	f.openErr = nil
	if _, _, err := b.Open(0); err != nil {
		t.Fatalf("Open after a failed one: %v", err)
	}
	b.Close()
}

// TestBindHoldAndInject holds a handshake initiation in OnReceive, lets
// the rest of the batch through untouched, and gives the initiation back
// through the injection ReceiveFunc without showing it to the hook again.
func TestBindHoldAndInject(t *testing.T) {
	f := newInnerBind()
	b := NewBind(f)
	fns := bindOpen(t, b, 0)
	inner, injection := fns[0], fns[len(fns)-1]

	var seen []byte
	var held []byte
	b.SetHooks(&Hooks{
		ReceiveTypes: TypeMask(MessageInitiation, MessageCookieReply),
		OnReceive: func(p []byte, ep wgconn.Endpoint) Verdict {
			seen = append(seen, p[0])
			if p[0] == MessageInitiation {
				held = append([]byte(nil), p...)
				return Hold
			}
			return Pass
		},
	})
	from := innerEndpoint{netip.MustParseAddrPort("198.18.0.2:51820")}
	batch := []innerDatagram{
		{bindMsg(MessageInitiation, MessageInitiationSize, 1), from},
		{bindMsg(MessageTransport, 200, 2), from},
		{bindMsg(MessageCookieReply, MessageCookieReplySize, 3), from},
		{[]byte{MessageInitiation, 0}, from}, // too short to have a type
	}
	f.rx <- batch
	packets, sizes, eps := bindRecvBufs(4)
	n, err := bindCallWithin(t, "inner receive", func() (int, error) { return inner(packets, sizes, eps) })
	if err != nil || n != 4 {
		t.Fatalf("receive = %d, %v", n, err)
	}
	if sizes[0] != 0 {
		t.Errorf("held initiation still has size %d, want 0 so the device skips it", sizes[0])
	}
	for i := 1; i < 4; i++ {
		if !bytes.Equal(packets[i][:sizes[i]], batch[i].packet) {
			t.Errorf("datagram %d changed: %x", i, packets[i][:sizes[i]])
		}
	}
	if !bytes.Equal(seen, []byte{MessageInitiation, MessageCookieReply}) {
		t.Errorf("hook saw types %v, want only the selected ones with a full header: [1 3]", seen)
	}
	if !bytes.Equal(held, batch[0].packet) {
		t.Fatalf("hook held %x", held)
	}

	if err := b.Inject(held, from); err != nil {
		t.Fatal(err)
	}
	held[5] = 0xff // Inject copied it
	packets, sizes, eps = bindRecvBufs(4)
	n, err = bindCallWithin(t, "injection receive", func() (int, error) { return injection(packets, sizes, eps) })
	if err != nil || n != 1 || !bytes.Equal(packets[0][:sizes[0]], batch[0].packet) || eps[0] != from {
		t.Fatalf("injection receive = %d, %v, packet %x from %v; want the held initiation from %v", n, err, packets[0][:sizes[0]], eps[0], from)
	}
	if len(seen) != 2 {
		t.Errorf("hook saw the injected datagram again (%d calls)", len(seen))
	}

	// Removing the hooks turns the look off.
	b.SetHooks(nil)
	f.rx <- batch[:1]
	if n, err := bindCallWithin(t, "inner receive", func() (int, error) { return inner(packets, sizes, eps) }); err != nil || n != 1 || sizes[0] != MessageInitiationSize {
		t.Errorf("without hooks: receive = %d, %v, size %d, want the initiation passed", n, err, sizes[0])
	}
}

// TestBindInjectBatchesAndBounds fills a receive batch from several
// injected datagrams and refuses past the queue bound.
func TestBindInjectBatchesAndBounds(t *testing.T) {
	b := NewBind(newInnerBind())
	fns := bindOpen(t, b, 0)
	injection := fns[len(fns)-1]
	ep := innerEndpoint{netip.MustParseAddrPort("198.18.0.2:1")}
	for i := 0; i < 3; i++ {
		if err := b.Inject(bindMsg(MessageInitiation, MessageInitiationSize, byte(i)), ep); err != nil {
			t.Fatal(err)
		}
	}
	packets, sizes, eps := bindRecvBufs(2)
	for _, want := range []int{2, 1} {
		n, err := bindCallWithin(t, "injection receive", func() (int, error) { return injection(packets, sizes, eps) })
		if err != nil || n != want {
			t.Fatalf("injection receive = %d, %v, want %d", n, err, want)
		}
	}
	if packets[0][4] != 2 {
		t.Errorf("third datagram has tag %d, want 2 (order kept)", packets[0][4])
	}
	for i := 0; i < injectQueueLen; i++ {
		if err := b.Inject(bindMsg(MessageInitiation, 8, 0), ep); err != nil {
			t.Fatalf("Inject %d of %d: %v", i+1, injectQueueLen, err)
		}
	}
	if err := b.Inject(bindMsg(MessageInitiation, 8, 0), ep); !errors.Is(err, ErrInjectQueueFull) {
		t.Errorf("Inject past the bound: %v, want ErrInjectQueueFull", err)
	}
}

// TestBindInjectionEndsOnClose checks the contract BindUpdate relies on:
// the injection ReceiveFunc returns net.ErrClosed after Close, also when
// it was blocked, and one from an earlier Open never returns anything else
// again, nor steals datagrams from the new one.
func TestBindInjectionEndsOnClose(t *testing.T) {
	b := NewBind(newInnerBind())
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	old := fns[len(fns)-1]
	packets, sizes, eps := bindRecvBufs(1)
	blocked := make(chan error, 1)
	go func() {
		_, err := old(packets, sizes, eps)
		blocked <- err
	}()
	b.Close()
	select {
	case err := <-blocked:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked injection receive after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("injection receive still blocked 5s after Close")
	}
	ep := innerEndpoint{netip.MustParseAddrPort("198.18.0.2:1")}
	if err := b.Inject(bindMsg(MessageInitiation, 148, 0), ep); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Inject after Close: %v, want net.ErrClosed", err)
	}

	fns = bindOpen(t, b, 0)
	cur := fns[len(fns)-1]
	if err := b.Inject(bindMsg(MessageInitiation, 148, 9), ep); err != nil {
		t.Fatal(err)
	}
	if _, err := bindCallWithin(t, "old injection receive", func() (int, error) { return old(packets, sizes, eps) }); !errors.Is(err, net.ErrClosed) {
		t.Errorf("injection receive of the previous Open after re-Open: %v, want net.ErrClosed", err)
	}
	n, err := bindCallWithin(t, "new injection receive", func() (int, error) { return cur(packets, sizes, eps) })
	if err != nil || n != 1 || packets[0][4] != 9 {
		t.Errorf("new injection receive = %d, %v, tag %d; want the datagram injected after re-Open", n, err, packets[0][4])
	}
}

// TestBindInjectOff: with SetInject(false) Open returns only the inner
// bind's receive functions (upstream gives each a goroutine and a batch of
// buffers) and Inject says injection is off; SetInject(true) brings the
// injection ReceiveFunc back at the next Open.
func TestBindInjectOff(t *testing.T) {
	b := NewBind(newInnerBind())
	b.SetInject(false)
	if fns := bindOpen(t, b, 0); len(fns) != 1 {
		t.Fatalf("Open with injection off returned %d receive functions, want the inner bind's 1", len(fns))
	}
	ep := innerEndpoint{netip.MustParseAddrPort("198.18.0.2:1")}
	if err := b.Inject(bindMsg(MessageInitiation, 148, 0), ep); !errors.Is(err, ErrInjectOff) {
		t.Errorf("Inject with injection off: %v, want ErrInjectOff", err)
	}
	b.Close()

	b.SetInject(true)
	fns := bindOpen(t, b, 0)
	if len(fns) != 2 {
		t.Fatalf("Open with injection on returned %d receive functions, want 2", len(fns))
	}
	if err := b.Inject(bindMsg(MessageInitiation, 148, 7), ep); err != nil {
		t.Fatal(err)
	}
	packets, sizes, eps := bindRecvBufs(1)
	n, err := bindCallWithin(t, "injection receive", func() (int, error) { return fns[1](packets, sizes, eps) })
	if err != nil || n != 1 || packets[0][4] != 7 {
		t.Errorf("injection receive = %d, %v, tag %d; want the injected datagram", n, err, packets[0][4])
	}
}

// TestBindSendUnwrapsEndpoints checks that OnSend sees the endpoint as
// the device gave it, and the inner bind only its own endpoint type.
func TestBindSendUnwrapsEndpoints(t *testing.T) {
	f := newInnerBind()
	b := NewBind(f)
	inner := innerEndpoint{netip.MustParseAddrPort("198.18.0.2:51820")}
	ep := wrappedTestEndpoint{wrappedTestEndpoint{inner, "in"}, "out"}
	var onSend []wgconn.Endpoint
	b.SetHooks(&Hooks{OnSend: func(bufs [][]byte, ep wgconn.Endpoint) {
		if len(bufs) != 2 {
			t.Errorf("OnSend got %d buffers, want 2", len(bufs))
		}
		onSend = append(onSend, ep)
	}})
	bufs := [][]byte{bindMsg(MessageTransport, 32, 1), bindMsg(MessageTransport, 48, 2)}
	if err := b.Send(bufs, ep); err != nil {
		t.Fatalf("Send with a twice-wrapped endpoint: %v", err)
	}
	if err := b.SendInner(bufs[:1], ep); err != nil {
		t.Fatalf("SendInner with a wrapped endpoint: %v", err)
	}
	if len(onSend) != 1 || onSend[0] != ep {
		t.Errorf("OnSend saw %v, want only Send's batch with the wrapped endpoint", onSend)
	}
	if len(f.sent) != 2 || f.sent[0].ep != inner || f.sent[1].ep != inner ||
		!bytes.Equal(f.sent[0].bufs[1], bufs[1]) || len(f.sent[1].bufs) != 1 {
		t.Errorf("inner bind got %+v, want both batches to the unwrapped endpoint", f.sent)
	}
	if _, tx := b.Bytes(); tx != 32+48+32 {
		t.Errorf("tx bytes = %d, want %d", tx, 32+48+32)
	}
	// A foreign endpoint that is not a wrapper still reaches the inner
	// bind, which reports it.
	if err := b.Send(bufs, bindtest.ChannelEndpoint(1)); !errors.Is(err, wgconn.ErrWrongEndpointType) {
		t.Errorf("Send with a foreign endpoint: %v, want the inner bind's ErrWrongEndpointType", err)
	}
}

// TestBindOptionalInterfaces checks that the optional interfaces reach an
// inner bind that has them, and report ErrUnsupported otherwise.
func TestBindOptionalInterfaces(t *testing.T) {
	extra := &innerBindExtra{innerBind: newInnerBind()}
	b := NewBind(extra)
	if err := b.BindSocketToInterface4(7, true); err != nil {
		t.Errorf("BindSocketToInterface4: %v", err)
	}
	if err := b.BindSocketToInterface6(8, false); err != nil {
		t.Errorf("BindSocketToInterface6: %v", err)
	}
	if len(extra.calls) != 2 {
		t.Errorf("inner calls = %v, want bind4 and bind6", extra.calls)
	}
	if fd, err := b.PeekLookAtSocketFd4(); fd != 14 || err != nil {
		t.Errorf("PeekLookAtSocketFd4 = %d, %v", fd, err)
	}
	if fd, err := b.PeekLookAtSocketFd6(); fd != 16 || err != nil {
		t.Errorf("PeekLookAtSocketFd6 = %d, %v", fd, err)
	}

	plain := NewBind(newInnerBind())
	for name, err := range map[string]error{
		"BindSocketToInterface4": plain.BindSocketToInterface4(1, false),
		"BindSocketToInterface6": plain.BindSocketToInterface6(1, false),
	} {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%s on a bind without it: %v, want ErrUnsupported", name, err)
		}
	}
	for name, fn := range map[string]func() (int, error){
		"PeekLookAtSocketFd4": plain.PeekLookAtSocketFd4,
		"PeekLookAtSocketFd6": plain.PeekLookAtSocketFd6,
	} {
		if fd, err := fn(); fd != -1 || !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%s on a bind without it = %d, %v, want -1, ErrUnsupported", name, fd, err)
		}
	}
}

// TestBindHooksSwappedWhileReceiving changes hooks while datagrams flow
// (run with -race).
func TestBindHooksSwappedWhileReceiving(t *testing.T) {
	f := newInnerBind()
	b := NewBind(f)
	fns := bindOpen(t, b, 0)
	ep := innerEndpoint{netip.MustParseAddrPort("198.18.0.2:1")}
	done := make(chan struct{})
	go func() {
		defer close(done)
		packets, sizes, eps := bindRecvBufs(1)
		for i := 0; i < 200; i++ {
			if _, err := fns[0](packets, sizes, eps); err != nil {
				return
			}
		}
	}()
	hold := &Hooks{ReceiveTypes: TypeMask(MessageInitiation), OnReceive: func([]byte, wgconn.Endpoint) Verdict { return Hold }}
	for i := 0; i < 200; i++ {
		if i%2 == 0 {
			b.SetHooks(hold)
		} else {
			b.SetHooks(nil)
		}
		f.rx <- []innerDatagram{{bindMsg(MessageInitiation, 148, 0), ep}}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("receiver did not drain 200 datagrams")
	}
}

// TestDstAddrPort: an endpoint's destination, through wrappers, for the
// bind's own endpoints and for one known only by its string.
func TestDstAddrPort(t *testing.T) {
	ap := netip.MustParseAddrPort("198.18.0.1:51820")
	std := &wgconn.StdNetEndpoint{AddrPort: ap}
	for name, ep := range map[string]wgconn.Endpoint{
		"std":     std,
		"wrapped": wrappedEndpoint{std},
		"string":  stringEndpoint{s: "198.18.0.1:51820"},
	} {
		if got := DstAddrPort(ep); got != ap {
			t.Errorf("%s: DstAddrPort = %v, want %v", name, got, ap)
		}
	}
	if got := DstAddrPort(nil); got.IsValid() {
		t.Errorf("nil endpoint: %v, want none", got)
	}
}

type wrappedEndpoint struct{ wgconn.Endpoint }

func (w wrappedEndpoint) Unwrap() wgconn.Endpoint { return w.Endpoint }

type stringEndpoint struct {
	wgconn.Endpoint
	s string
}

func (e stringEndpoint) DstToString() string { return e.s }

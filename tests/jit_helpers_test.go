package tests

// Helpers for the just-in-time peer tests: a scripted provider, plain
// upstream clients that count the initiations they send, and crafted
// initiations sent from a bare UDP socket.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tai64n"

	"wghooks/conn"
	"wghooks/device"
	"wghooks/hooks"
)

// jitProvider is a hooks.Provider backed by a map, counting lookups per
// key. answer, when set, overrides the map.
type jitProvider struct {
	mu     sync.Mutex
	peers  map[hooks.PublicKey]hooks.PeerConfig
	calls  map[hooks.PublicKey]int
	answer func(ctx context.Context, key hooks.PublicKey) (hooks.PeerConfig, error)
}

func newJITProvider() *jitProvider {
	return &jitProvider{peers: map[hooks.PublicKey]hooks.PeerConfig{}, calls: map[hooks.PublicKey]int{}}
}

func (p *jitProvider) LookupPeer(ctx context.Context, key hooks.PublicKey) (hooks.PeerConfig, error) {
	p.mu.Lock()
	p.calls[key]++
	answer := p.answer
	cfg, ok := p.peers[key]
	p.mu.Unlock()
	if answer != nil {
		return answer(ctx, key)
	}
	if !ok {
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}
	return cfg, nil
}

func (p *jitProvider) set(key [32]byte, addr netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peers[key] = hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.PrefixFrom(addr, addr.BitLen())}}
}

func (p *jitProvider) del(key [32]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.peers, key)
}

func (p *jitProvider) callsFor(key [32]byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[key]
}

func (p *jitProvider) totalCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		n += c
	}
	return n
}

// jitEvents records OnPeerEvent notifications.
type jitEvents struct {
	mu  sync.Mutex
	evs []hooks.PeerEvent
}

func (e *jitEvents) on(ev hooks.PeerEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

func (e *jitEvents) count(kind hooks.PeerEventKind, key [32]byte) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ev.Kind == kind && ev.Key == key {
			n++
		}
	}
	return n
}

// jitLog collects log lines.
type jitLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *jitLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *jitLog) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// newJITServer starts a wghooks node at 198.18.0.1 with provider p and
// the given JIT settings (events recorded in ev, verbose lines in log,
// when non-nil), answering jitRoundTrip.
func newJITServer(t testing.TB, p hooks.Provider, cfg device.JITConfig, ev *jitEvents, log *jitLog) (*node, *device.Device) {
	t.Helper()
	return newJITServerWith(t, p, device.Config{JIT: cfg}, ev, log)
}

// newJITServerWith is newJITServer with the rest of the device's
// configuration.
func newJITServerWith(t testing.TB, p hooks.Provider, dc device.Config, ev *jitEvents, log *jitLog) (*node, *device.Device) {
	t.Helper()
	dc.JIT.Provider = p
	if ev != nil {
		dc.JIT.OnPeerEvent = ev.on
	}
	// A gateway keeps its port: no flow escape (which moves a device with
	// a random port to a new one when its peers go quiet).
	dc.HA.FlowEscapeOff = true
	if log != nil {
		dc.Verbosef, dc.Errorf = log.logf, log.logf
	}
	n, d := newWghooksNode(t, "198.18.0.1", dc)
	jitServeEcho(t, n)
	return n, d
}

// jitCountingBind counts the handshake initiations an upstream client
// sends.
type jitCountingBind struct {
	wgconn.Bind
	inits atomic.Int64
}

func (b *jitCountingBind) Send(bufs [][]byte, ep wgconn.Endpoint) error {
	for _, buf := range bufs {
		if len(buf) == conn.MessageInitiationSize && buf[0] == conn.MessageInitiation {
			b.inits.Add(1)
		}
	}
	return b.Bind.Send(bufs, ep)
}

// jitClient is a plain upstream device on netstack that has server as
// its peer (with endpoint), and counts its initiations.
type jitClient struct {
	*node
	dev  *wgdevice.Device
	bind *jitCountingBind
}

func newJITClient(t testing.TB, addr string, server *node) *jitClient {
	t.Helper()
	b := &jitCountingBind{Bind: wgconn.NewDefaultBind()}
	n, d := newUpstreamNodeOn(t, addr, b)
	peerWith(t, d, server, true)
	return &jitClient{node: n, dev: d, bind: b}
}

// rehandshake makes the client start a new handshake on its next packet.
func (c *jitClient) rehandshake(server *node) {
	if p := c.dev.LookupPeer(server.key.pub); p != nil {
		p.ExpireCurrentKeypairs()
	}
}

// jitSender sends crafted initiations to a server from one UDP socket.
type jitSender struct {
	c      *net.UDPConn
	server *node
	ts     time.Time
}

func newJITSender(t testing.TB, server *node) *jitSender {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), server.port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &jitSender{c: c, server: server, ts: time.Now()}
}

// initiation seals a genuine initiation from k, each with a newer
// timestamp than the last.
func (s *jitSender) initiation(t testing.TB, k keypair) []byte {
	t.Helper()
	return s.claiming(t, k.pub, k)
}

// claiming seals an initiation claiming key claimed, sealed by k.
func (s *jitSender) claiming(t testing.TB, claimed [32]byte, k keypair) []byte {
	t.Helper()
	s.ts = s.ts.Add(50 * time.Millisecond)
	eph := newKeypair(t)
	msg, err := conn.SealInitiationClaiming(claimed, k.priv, s.server.key.pub, eph.priv, uint32(s.ts.UnixNano()), jitStamp(s.ts))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func (s *jitSender) send(t testing.TB, msg []byte) {
	t.Helper()
	if _, err := s.c.Write(msg); err != nil {
		t.Fatal(err)
	}
}

// jitStamp is the TAI64N timestamp of t.
func jitStamp(t time.Time) tai64n.Timestamp {
	var ts tai64n.Timestamp
	secs := uint64(0x400000000000000a) + uint64(t.Unix())
	for i := 0; i < 8; i++ {
		ts[i] = byte(secs >> (56 - 8*i))
	}
	nano := uint32(t.Nanosecond())
	for i := 0; i < 4; i++ {
		ts[8+i] = byte(nano >> (24 - 8*i))
	}
	return ts
}

// jitRemac recomputes mac1 of a modified initiation for the server.
func jitRemac(server *node, msg []byte) []byte {
	var gen wgdevice.CookieGenerator
	gen.Init(server.key.pub)
	gen.AddMacs(msg)
	return msg
}

// jitEchoPort is the UDP port of jitServeEcho.
const jitEchoPort = 7

// jitServeEcho answers UDP datagrams on n's tunnel address, port 7.
func jitServeEcho(t testing.TB, n *node) {
	t.Helper()
	c, err := n.net.ListenUDPAddrPort(netip.AddrPortFrom(n.addr, jitEchoPort))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			k, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:k], from)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
}

// jitRoundTrip sends one datagram through the tunnel from n to the echo
// server at to and waits for it to come back: traffic that proves the
// tunnel works end to end.
func jitRoundTrip(n *node, to netip.Addr, timeout time.Duration) error {
	c, err := n.net.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(to, jitEchoPort))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	msg := []byte(fmt.Sprintf("jit %d", time.Now().UnixNano()))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	k, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:k]) != string(msg) {
		return fmt.Errorf("echo answered %q, want %q", buf[:k], msg)
	}
	return nil
}

package tests

// Helpers for the just-in-time peer tests: a scripted provider, plain
// upstream clients that count the initiations they send, and crafted
// initiations sent from a bare UDP socket.

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tai64n"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/testkit"
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

// newJITServer starts a wghooks node at 198.18.0.1 with provider p and
// the given JIT settings (events recorded in ev, verbose lines in log,
// when non-nil), answering UDP echoes (testkit.ServeEcho).
func newJITServer(t testing.TB, p hooks.Provider, cfg device.JITConfig, ev *jitEvents, log *testkit.Log) (*testkit.Node, *device.Device) {
	t.Helper()
	return newJITServerWith(t, p, device.Config{JIT: cfg}, ev, log)
}

// newJITServerWith is newJITServer with the rest of the device's
// configuration.
func newJITServerWith(t testing.TB, p hooks.Provider, dc device.Config, ev *jitEvents, log *testkit.Log) (*testkit.Node, *device.Device) {
	t.Helper()
	dc.JIT.Provider = p
	if ev != nil {
		dc.JIT.OnPeerEvent = ev.on
	}
	// A gateway keeps its port: no flow escape (which moves a device with
	// a random port to a new one when its peers go quiet).
	dc.HA.FlowEscapeOff = true
	if log != nil {
		dc.Verbosef, dc.Errorf = log.Logf, log.Logf
	}
	n, d := testkit.NewWghooks(t, "198.18.0.1", dc)
	testkit.ServeEcho(t, n)
	return n, d
}

// jitClient is a plain upstream device on netstack that has server as
// its peer (with endpoint), and counts its initiations.
type jitClient struct {
	*testkit.Node
	dev  *wgdevice.Device
	bind *testkit.CountingBind
}

func newJITClient(t testing.TB, addr string, server *testkit.Node) *jitClient {
	t.Helper()
	return newJITClientOn(t, addr, server, nil)
}

// newJITClientOn is newJITClient sending through inner (nil: upstream's
// default bind), e.g. a testkit.SourceBind on an address of its own.
func newJITClientOn(t testing.TB, addr string, server *testkit.Node, inner wgconn.Bind) *jitClient {
	t.Helper()
	b := testkit.NewCountingBind(inner)
	n, d := testkit.NewUpstream(t, addr, b)
	testkit.AddPeer(t, d, server, true)
	return &jitClient{Node: n, dev: d, bind: b}
}

// rehandshake makes the client start a new handshake on its next packet.
func (c *jitClient) rehandshake(server *testkit.Node) {
	if p := c.dev.LookupPeer(server.Key.Pub); p != nil {
		p.ExpireCurrentKeypairs()
	}
}

// jitSender sends crafted initiations to a server from one UDP socket.
type jitSender struct {
	c      *net.UDPConn
	server *testkit.Node
	ts     time.Time
}

func newJITSender(t testing.TB, server *testkit.Node) *jitSender {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), server.Port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &jitSender{c: c, server: server, ts: time.Now()}
}

// initiation seals a genuine initiation from k, each with a newer
// timestamp than the last.
func (s *jitSender) initiation(t testing.TB, k testkit.Keypair) []byte {
	t.Helper()
	return s.claiming(t, k.Pub, k)
}

// claiming seals an initiation claiming key claimed, sealed by k.
func (s *jitSender) claiming(t testing.TB, claimed [32]byte, k testkit.Keypair) []byte {
	t.Helper()
	s.ts = s.ts.Add(50 * time.Millisecond)
	eph := testkit.NewKeypair()
	msg, err := conn.SealInitiationClaiming(claimed, k.Priv, s.server.Key.Pub, eph.Priv, uint32(s.ts.UnixNano()), jitStamp(s.ts))
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
func jitRemac(server *testkit.Node, msg []byte) []byte {
	var gen wgdevice.CookieGenerator
	gen.Init(server.Key.Pub)
	gen.AddMacs(msg)
	return msg
}

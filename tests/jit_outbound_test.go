package tests

// Tests of the just-in-time outbound side: a packet from the gateway to
// the address of a client it does not hold installs the client from the
// provider (by address, with its endpoint), the gateway initiates the
// handshake, and the packet arrives.

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/httpprovider"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/testkit"
)

// jitOutboundProvider answers by key and by address from one table,
// counting lookups per address. byAddr, when set, overrides the table for
// address lookups.
type jitOutboundProvider struct {
	*jitProvider
	mu        sync.Mutex
	addrCalls map[netip.Addr]int
	byAddr    func(ctx context.Context, a netip.Addr) (hooks.PeerConfig, error)
	inFlight  atomic.Int32
}

func newJITOutboundProvider() *jitOutboundProvider {
	return &jitOutboundProvider{jitProvider: newJITProvider(), addrCalls: map[netip.Addr]int{}}
}

func (p *jitOutboundProvider) LookupAddr(ctx context.Context, a netip.Addr) (hooks.PeerConfig, error) {
	p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	p.mu.Lock()
	p.addrCalls[a]++
	byAddr := p.byAddr
	p.mu.Unlock()
	if byAddr != nil {
		return byAddr(ctx, a)
	}
	p.jitProvider.mu.Lock()
	defer p.jitProvider.mu.Unlock()
	for k, cfg := range p.peers {
		for _, pfx := range cfg.AllowedIPs {
			if pfx.Contains(a) {
				cfg.PublicKey = k
				return cfg, nil
			}
		}
	}
	return hooks.PeerConfig{}, hooks.ErrUnknownPeer
}

func (p *jitOutboundProvider) addrCallsFor(a netip.Addr) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addrCalls[a]
}

func (p *jitOutboundProvider) setByAddr(f func(ctx context.Context, a netip.Addr) (hooks.PeerConfig, error)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byAddr = f
}

// jitOutboundGateway starts a gateway at 198.18.0.1 with the outbound side
// on (and cfg's other settings), logging to log.
func jitOutboundGateway(t *testing.T, p hooks.Provider, cfg device.JITConfig, ev *jitEvents, log *testkit.Log) (*testkit.Node, *device.Device) {
	t.Helper()
	cfg.Outbound = true
	return newJITServer(t, p, cfg, ev, log)
}

// jitOutboundClient starts a plain upstream client at addr that has the
// gateway as its peer but not its endpoint (it can be reached, it cannot
// reach), answers UDP echo on port testkit.EchoPort, and counts the initiations
// it sends. p, when not nil, learns it (jitOutboundPeer).
func jitOutboundClient(t *testing.T, addr string, gw *testkit.Node, p *jitOutboundProvider) *jitClient {
	t.Helper()
	b := testkit.NewCountingBind(wgconn.NewDefaultBind())
	n, d := testkit.NewUpstream(t, addr, b)
	testkit.AddPeer(t, d, gw, false)
	testkit.ServeEcho(t, n)
	c := &jitClient{Node: n, dev: d, bind: b}
	if p != nil {
		p.jitProvider.mu.Lock()
		p.peers[n.Key.Pub] = jitOutboundPeer(c)
		p.jitProvider.mu.Unlock()
	}
	return c
}

// jitOutboundPeer is what a provider knows of c: its address and its
// endpoint.
func jitOutboundPeer(c *jitClient) hooks.PeerConfig {
	return hooks.PeerConfig{
		PublicKey:  c.Key.Pub,
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(c.Addr, 32)},
		Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), c.Port),
	}
}

// jitOutboundSend sends one UDP datagram from n to a:port and does not
// wait for anything.
func jitOutboundSend(t *testing.T, n *testkit.Node, a netip.Addr, port uint16) {
	t.Helper()
	c, err := n.Net.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(a, port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("jit outbound")); err != nil {
		t.Fatal(err)
	}
}

// jitOutboundSettled sends a packet to a fresh unknown address behind
// everything sent before and waits for its lookup: the TUN reader takes
// packets in order, so every earlier packet has been looked at by then.
func jitOutboundSettled(t *testing.T, gw *testkit.Node, p *jitOutboundProvider, barrier netip.Addr) {
	t.Helper()
	jitOutboundSend(t, gw, barrier, 9)
	testkit.Eventually(t, 10*time.Second, "the barrier packet's lookup", func() bool { return p.addrCallsFor(barrier) == 1 })
}

// TestJITOutboundReachesClientFirst: a packet from the gateway to a client
// it does not hold installs the client from the provider with its
// endpoint; the gateway initiates the one handshake, and that first packet
// arrives (held during the lookup, not dropped).
func TestJITOutboundReachesClientFirst(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITOutboundProvider()
	ev := &jitEvents{}
	gw, gd := jitOutboundGateway(t, p, device.JITConfig{}, ev, nil)
	c := jitOutboundClient(t, "198.18.0.2", gw, p)
	if gd.HasPeer(c.Key.Pub) {
		t.Fatal("client installed before any packet")
	}

	start := time.Now()
	// jitRoundTrip sends exactly one datagram: its echo coming back proves
	// that first packet was delivered.
	if err := gw.Echo(c.Addr, 15*time.Second); err != nil {
		t.Fatalf("first packet from the gateway to a client it did not hold: %v", err)
	}
	t.Logf("first outbound packet to its echo: %v", time.Since(start))

	if !gd.HasPeer(c.Key.Pub) {
		t.Fatal("client not installed")
	}
	if n := p.addrCallsFor(c.Addr); n != 1 {
		t.Fatalf("provider asked %d times about %s, want 1", n, c.Addr)
	}
	if n := p.callsFor(c.Key.Pub); n != 0 {
		t.Fatalf("provider asked %d times by key, want 0 (the client never initiated)", n)
	}
	if n := c.bind.InitSent.Load(); n != 0 {
		t.Fatalf("client sent %d initiations, want 0 (it does not know the gateway's endpoint)", n)
	}
	st := gd.Stats()
	if st.HandshakesSent != 1 || st.OutboundInstalls != 1 || st.PeersInstalled != 1 {
		t.Fatalf("gateway stats: %d handshake messages sent, %d outbound installs, %d installs; want 1, 1, 1",
			st.HandshakesSent, st.OutboundInstalls, st.PeersInstalled)
	}
	if ev.count(hooks.PeerInstalled, c.Key.Pub) != 1 {
		t.Fatal("no PeerInstalled event")
	}
	get, err := gd.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	sect := get[strings.Index(get, "public_key="+c.Key.PubHex()):]
	if !strings.Contains(sect, fmt.Sprintf("endpoint=127.0.0.1:%d\n", c.Port)) || !strings.Contains(sect, "wghooks_jit=true\n") {
		t.Fatalf("installed peer lacks its endpoint or the just-in-time mark:\n%s", sect)
	}
}

// TestJITOutboundUnknownNegativeCache: packets to an address no peer holds
// ask the provider once per negative-cache period, however many there
// are.
func TestJITOutboundUnknownNegativeCache(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITOutboundProvider()
	log := testkit.NewLog(t, "server")
	gw, gd := jitOutboundGateway(t, p, device.JITConfig{NegativeTTL: time.Hour}, nil, log)
	stranger := netip.MustParseAddr("198.18.0.99")
	for i := 0; i < 20; i++ {
		jitOutboundSend(t, gw, stranger, 9)
	}
	jitOutboundSettled(t, gw, p, netip.MustParseAddr("198.18.0.98"))
	testkit.Eventually(t, 10*time.Second, "the first lookup", func() bool { return p.addrCallsFor(stranger) >= 1 })
	for i := 0; i < 20; i++ {
		jitOutboundSend(t, gw, stranger, 9)
	}
	jitOutboundSettled(t, gw, p, netip.MustParseAddr("198.18.0.97"))
	if n := p.addrCallsFor(stranger); n != 1 {
		t.Fatalf("provider asked %d times about %s within one negative-cache period, want 1", n, stranger)
	}
	if log.Count("jit: outbound packet to 198.18.0.99 dropped: no peer holds it") != 1 {
		t.Fatal("no log line for the unknown address")
	}
	if st := gd.Stats(); st.PeersActive != 0 || st.OutboundInstalls != 0 {
		t.Fatalf("%d peers, %d outbound installs; want none", st.PeersActive, st.OutboundInstalls)
	}
	// Multicast and link-local destinations are never looked up.
	for _, a := range []string{"224.0.0.251", "169.254.0.9"} {
		jitOutboundSend(t, gw, netip.MustParseAddr(a), 9)
	}
	jitOutboundSettled(t, gw, p, netip.MustParseAddr("198.18.0.96"))
	if n := p.addrCallsFor(netip.MustParseAddr("224.0.0.251")) + p.addrCallsFor(netip.MustParseAddr("169.254.0.9")); n != 0 {
		t.Fatalf("provider asked %d times about multicast or link-local addresses", n)
	}
}

// TestJITOutboundSlowProviderBlocksNothing: while the provider hangs on an
// address lookup, a known peer's traffic flows; the lookup ends at the
// timeout with a clear log line and nothing installed.
func TestJITOutboundSlowProviderBlocksNothing(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITOutboundProvider()
	log := testkit.NewLog(t, "server")
	gw, gd := jitOutboundGateway(t, p, device.JITConfig{LookupTimeout: 4 * time.Second}, nil, log)
	known := jitOutboundClient(t, "198.18.0.3", gw, p)
	testkit.AddPeer(t, gd, known.Node, true) // a static peer, reachable both ways

	hung := make(chan struct{})
	var once sync.Once
	p.setByAddr(func(ctx context.Context, a netip.Addr) (hooks.PeerConfig, error) {
		once.Do(func() { close(hung) })
		<-ctx.Done()
		return hooks.PeerConfig{}, ctx.Err()
	})
	slow := netip.MustParseAddr("198.18.0.4")
	jitOutboundSend(t, gw, slow, 9)
	select {
	case <-hung:
	case <-time.After(10 * time.Second):
		t.Fatal("provider never asked")
	}
	for i := 0; i < 3; i++ {
		if err := gw.Echo(known.Addr, 10*time.Second); err != nil {
			t.Fatalf("known peer's traffic while a lookup hangs: %v", err)
		}
	}
	if p.inFlight.Load() != 1 {
		t.Log("the hung lookup ended before the known peer's traffic did; the machine is slow, the check is weaker")
	}
	testkit.Eventually(t, 15*time.Second, "the timeout's log line", func() bool {
		return log.Count("jit: outbound packet to 198.18.0.4 dropped: failed to look up the address: context deadline exceeded") == 1
	})
	if st := gd.Stats(); st.OutboundInstalls != 0 || st.ProviderErrors != 1 {
		t.Fatalf("%d outbound installs, %d provider errors; want 0 and 1", st.OutboundInstalls, st.ProviderErrors)
	}
}

// TestJITOutboundAnswersRefused: an answer without an endpoint, one naming
// a static peer, and one taking a static peer's allowed IPs are skipped
// with a log line; nothing is installed and the static peer keeps its
// route.
func TestJITOutboundAnswersRefused(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITOutboundProvider()
	log := testkit.NewLog(t, "server")
	gw, gd := jitOutboundGateway(t, p, device.JITConfig{}, nil, log)
	static := jitOutboundClient(t, "198.18.0.3", gw, p)
	testkit.AddPeer(t, gd, static.Node, true)
	stranger := testkit.NewKeypair()
	ep := netip.MustParseAddrPort("127.0.0.1:9")

	cases := []struct {
		dst  string
		cfg  hooks.PeerConfig
		want string
	}{
		{"198.18.0.5", hooks.PeerConfig{PublicKey: stranger.Pub, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.5/32")}},
			"no endpoint, so the peer cannot be reached first"},
		{"198.18.0.6", hooks.PeerConfig{PublicKey: static.Key.Pub, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.6/32")}, Endpoint: ep},
			"it is a static peer"},
		{"198.18.0.7", hooks.PeerConfig{PublicKey: stranger.Pub, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}, Endpoint: ep},
			"overlaps 198.18.0.3/32 of static"},
		{"198.18.0.8", hooks.PeerConfig{PublicKey: stranger.Pub, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24")}, Endpoint: ep},
			"do not hold it"},
		{"198.18.0.9", hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.9/32")}, Endpoint: ep},
			"names no public key"},
	}
	answers := map[netip.Addr]hooks.PeerConfig{}
	for _, c := range cases {
		answers[netip.MustParseAddr(c.dst)] = c.cfg
	}
	p.setByAddr(func(_ context.Context, a netip.Addr) (hooks.PeerConfig, error) {
		if cfg, ok := answers[a]; ok {
			return cfg, nil
		}
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	})
	for _, c := range cases {
		jitOutboundSend(t, gw, netip.MustParseAddr(c.dst), 9)
		testkit.Eventually(t, 10*time.Second, "the refusal of the answer for "+c.dst, func() bool {
			return log.Count("jit: outbound packet to "+c.dst+" dropped: ") == 1 && log.Count(c.want) >= 1
		})
	}
	if gd.HasPeer(stranger.Pub) {
		t.Fatal("a refused answer was installed")
	}
	if st := gd.Stats(); st.OutboundInstalls != 0 || st.PeersActive != 1 {
		t.Fatalf("%d outbound installs, %d peers; want 0 and 1 (the static peer)", st.OutboundInstalls, st.PeersActive)
	}
	if err := gw.Echo(static.Addr, 10*time.Second); err != nil {
		t.Fatalf("static peer after the refusals: %v", err)
	}
}

// TestJITOutboundAfterEviction: a client installed by an outbound packet,
// then evicted for idleness, is installed again by the next packet to it.
func TestJITOutboundAfterEviction(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITOutboundProvider()
	ev := &jitEvents{}
	gw, gd := jitOutboundGateway(t, p, device.JITConfig{IdleTimeout: time.Second}, ev, nil)
	c := jitOutboundClient(t, "198.18.0.2", gw, p)
	if err := gw.Echo(c.Addr, 15*time.Second); err != nil {
		t.Fatalf("first outbound packet: %v", err)
	}
	testkit.Eventually(t, 20*time.Second, "the idle client's eviction", func() bool {
		return ev.count(hooks.PeerEvicted, c.Key.Pub) == 1 && !gd.HasPeer(c.Key.Pub)
	})
	if err := gw.Echo(c.Addr, 15*time.Second); err != nil {
		t.Fatalf("first outbound packet after eviction: %v", err)
	}
	if st := gd.Stats(); st.OutboundInstalls != 2 {
		t.Fatalf("%d outbound installs, want 2", st.OutboundInstalls)
	}
	if n := p.addrCallsFor(c.Addr); n != 2 {
		t.Fatalf("provider asked %d times about %s, want 2 (one per install)", n, c.Addr)
	}
	if n := c.bind.InitSent.Load(); n != 0 {
		t.Fatalf("client sent %d initiations, want 0", n)
	}
}

// TestJITOutboundOffWithoutAddrProvider: a provider that cannot look up
// addresses leaves the outbound side off, saying so once.
func TestJITOutboundOffWithoutAddrProvider(t *testing.T) {
	testkit.CheckLeaks(t)
	log := testkit.NewLog(t, "server")
	gw, gd := jitOutboundGateway(t, newJITProvider(), device.JITConfig{}, nil, log)
	if log.Count("jit: outbound side off") != 1 {
		t.Fatal("no log line saying the outbound side is off")
	}
	jitOutboundSend(t, gw, netip.MustParseAddr("198.18.0.2"), 9)
	if err := gw.Echo(gw.Addr, 10*time.Second); err != nil {
		t.Fatalf("local traffic with the outbound side off: %v", err)
	}
	if st := gd.Stats(); st.ProviderLookups != 0 {
		t.Fatalf("%d lookups, want 0", st.ProviderLookups)
	}
}

// TestJITOutboundSQLiteAndHTTP: the SQLite store, directly and behind an
// HTTP control plane (httptest), installs a client by its address.
func TestJITOutboundSQLiteAndHTTP(t *testing.T) {
	for _, viaHTTP := range []bool{false, true} {
		name := "sqlite"
		if viaHTTP {
			name = "http"
		}
		t.Run(name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			store, err := sqlstore.Open(filepath.Join(t.TempDir(), "peers.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			var p hooks.Provider = store
			if viaHTTP {
				cp := httptest.NewServer(httpprovider.Handler(store, "t0ken"))
				t.Cleanup(cp.Close)
				if p, err = httpprovider.New(httpprovider.Config{URL: cp.URL + "/peers", AddrURL: cp.URL + "/peers?addr={addr}", Token: "t0ken"}); err != nil {
					t.Fatal(err)
				}
			}
			gw, gd := jitOutboundGateway(t, p, device.JITConfig{}, nil, nil)
			c := jitOutboundClient(t, "198.18.0.2", gw, nil)
			if err := store.Put(context.Background(), sqlstore.Peer{PeerConfig: jitOutboundPeer(c)}); err != nil {
				t.Fatal(err)
			}
			if err := gw.Echo(c.Addr, 15*time.Second); err != nil {
				t.Fatalf("first outbound packet: %v", err)
			}
			if st := gd.Stats(); st.OutboundInstalls != 1 || st.HandshakesSent != 1 {
				t.Fatalf("%d outbound installs, %d handshake messages sent; want 1 and 1", st.OutboundInstalls, st.HandshakesSent)
			}
			if n := c.bind.InitSent.Load(); n != 0 {
				t.Fatalf("client sent %d initiations, want 0", n)
			}
		})
	}
}

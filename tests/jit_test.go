package tests

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/httpprovider"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/testkit"
)

// TestJITFirstHandshakeOneInitiation: brand-new clients whose keys exist
// only in the provider complete their first handshake with exactly one
// initiation each.
func TestJITFirstHandshakeOneInitiation(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITProvider()
	ev := &jitEvents{}
	server, sd := newJITServer(t, p, device.JITConfig{}, ev, nil)
	for i := 0; i < 4; i++ {
		c := newJITClient(t, fmt.Sprintf("198.18.1.%d", i+1), server)
		p.set(c.Key.Pub, c.Addr)
		testkit.AddPeer(t, c.dev, server, true)
		if err := c.Node.Echo(server.Addr, 10*time.Second); err != nil {
			t.Fatalf("client %d: ping through a just-in-time peer: %v", i, err)
		}
		if n := c.bind.InitSent.Load(); n != 1 {
			t.Fatalf("client %d sent %d initiations, want exactly 1", i, n)
		}
		if !sd.HasPeer(c.Key.Pub) {
			t.Fatalf("client %d not installed", i)
		}
		if n := p.callsFor(c.Key.Pub); n != 1 {
			t.Fatalf("provider asked %d times about client %d, want 1", n, i)
		}
	}
	if st := sd.Stats(); st.PeersInstalled != 4 || st.PeerMisses != 4 {
		t.Fatalf("stats: %d installed, %d misses; want 4 and 4", st.PeersInstalled, st.PeerMisses)
	}
	// Each first contact's own costs are measured: one decode (the
	// authentication) and one install transaction each.
	if st := sd.Stats(); st.InitiationsDecoded != 4 || st.InstallTransactions != 4 || st.DecodeSeconds <= 0 || st.InstallSeconds <= 0 {
		t.Fatalf("stats: %d decodes in %vs, %d installs in %vs; want 4 and 4, timed",
			st.InitiationsDecoded, st.DecodeSeconds, st.InstallTransactions, st.InstallSeconds)
	}
}

// TestJITUnknownKeyNegativeCache: an unknown key is refused and the
// provider is asked about it at most once per negative-cache period.
func TestJITUnknownKeyNegativeCache(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITProvider()
	ev := &jitEvents{}
	const ttl = 400 * time.Millisecond
	server, sd := newJITServer(t, p, device.JITConfig{NegativeTTL: ttl}, ev, nil)
	s := newJITSender(t, server)
	stranger := testkit.NewKeypair()

	start := time.Now()
	for i := 0; i < 3; i++ {
		s.send(t, s.initiation(t, stranger))
		testkit.Eventually(t, 5*time.Second, "the initiation to be refused", func() bool {
			return ev.count(hooks.PeerRefused, stranger.Pub) == i+1
		})
	}
	if time.Since(start) < ttl {
		if n := p.callsFor(stranger.Pub); n != 1 {
			t.Fatalf("provider asked %d times within one negative-cache period, want 1", n)
		}
	}
	if sd.HasPeer(stranger.Pub) {
		t.Fatal("unknown key installed")
	}
	time.Sleep(ttl + 100*time.Millisecond) // let the negative entry expire
	s.send(t, s.initiation(t, stranger))
	testkit.Eventually(t, 5*time.Second, "the provider to be asked again after the period", func() bool {
		return p.callsFor(stranger.Pub) == 2
	})
	if sd.HasPeer(stranger.Pub) {
		t.Fatal("unknown key installed")
	}
}

// TestJITForgedInitiationNeverReachesProvider: initiations with a valid
// mac1 but a static key that does not decrypt, a timestamp that does not
// authenticate, or a claimed key the sender cannot prove, never cause a
// lookup.
func TestJITForgedInitiationNeverReachesProvider(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITProvider()
	ev := &jitEvents{}
	log := testkit.NewLog(t, "server")
	server, sd := newJITServer(t, p, device.JITConfig{}, ev, log)
	s := newJITSender(t, server)
	victim, attacker, canary := testkit.NewKeypair(), testkit.NewKeypair(), testkit.NewKeypair()
	p.set(victim.Pub, netip.MustParseAddr("198.18.1.1"))
	p.set(canary.Pub, netip.MustParseAddr("198.18.1.2"))

	badStatic := s.initiation(t, victim)
	badStatic[8+32+5] ^= 1
	badTimestamp := s.initiation(t, victim)
	badTimestamp[8+32+48+3] ^= 1
	forged := [][]byte{
		jitRemac(server, badStatic),
		jitRemac(server, badTimestamp),
		s.claiming(t, victim.Pub, attacker), // impersonation
	}
	for _, m := range forged {
		s.send(t, m)
	}
	testkit.Eventually(t, 5*time.Second, "the forged initiations to be decoded and dropped", func() bool {
		return log.Count("jit: dropped initiation") == len(forged)
	})
	badMAC := s.initiation(t, victim)
	badMAC[116] ^= 1 // inside mac1
	s.send(t, badMAC)

	// A genuine initiation behind them goes through.
	s.send(t, s.initiation(t, canary))
	testkit.Eventually(t, 5*time.Second, "the genuine initiation to install its peer", func() bool {
		return sd.HasPeer(canary.Pub)
	})
	if n := p.callsFor(victim.Pub); n != 0 {
		t.Fatalf("forged initiations caused %d lookups of the victim's key", n)
	}
	if n := p.totalCalls(); n != 1 {
		t.Fatalf("provider asked %d times, want 1 (the genuine one)", n)
	}
	if sd.HasPeer(victim.Pub) {
		t.Fatal("victim installed from a forged initiation")
	}
}

// TestJITProviderFailures: a provider that errors, hangs past its
// timeout, panics or answers invalid data installs nothing and breaks
// nothing.
func TestJITProviderFailures(t *testing.T) {
	testkit.CheckLeaks(t)
	release := make(chan struct{})
	defer close(release)
	cases := map[string]func(ctx context.Context) (hooks.PeerConfig, error){
		"error": func(context.Context) (hooks.PeerConfig, error) {
			return hooks.PeerConfig{}, errors.New("database is on fire")
		},
		"hang": func(ctx context.Context) (hooks.PeerConfig, error) {
			select { // ignores ctx until the test ends
			case <-release:
			}
			return hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.9.9/32")}}, nil
		},
		"panic": func(context.Context) (hooks.PeerConfig, error) {
			panic("provider bug")
		},
		"invalid allowed IP": func(context.Context) (hooks.PeerConfig, error) {
			return hooks.PeerConfig{AllowedIPs: []netip.Prefix{{}}}, nil
		},
		"invalid keepalive": func(context.Context) (hooks.PeerConfig, error) {
			return hooks.PeerConfig{PersistentKeepalive: 1e6 * time.Second}, nil
		},
		"another key": func(context.Context) (hooks.PeerConfig, error) {
			return hooks.PeerConfig{PublicKey: hooks.PublicKey{1}}, nil
		},
		// A static peer below owns 198.18.7.0/24: an answer may not take
		// any of it, or upstream would move the route to the newcomer.
		"steals a static route": func(context.Context) (hooks.PeerConfig, error) {
			return hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.7.7/32")}}, nil
		},
	}
	byKey := map[hooks.PublicKey]func(ctx context.Context) (hooks.PeerConfig, error){}
	keys := map[string]testkit.Keypair{}
	for name, f := range cases {
		k := testkit.NewKeypair()
		keys[name] = k
		byKey[k.Pub] = f
	}
	good := testkit.NewKeypair()
	p := newJITProvider()
	p.answer = func(ctx context.Context, key hooks.PublicKey) (hooks.PeerConfig, error) {
		if f, ok := byKey[key]; ok {
			return f(ctx)
		}
		if key == good.Pub {
			return hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.1.1/32")}}, nil
		}
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}
	ev := &jitEvents{}
	server, sd := newJITServer(t, p, device.JITConfig{LookupTimeout: 300 * time.Millisecond}, ev, nil)
	static := testkit.NewKeypair()
	if err := sd.IpcSet(testkit.UAPI("public_key", static.PubHex(), "allowed_ip", "198.18.7.0/24")); err != nil {
		t.Fatal(err)
	}
	// Each case knocks from an address of its own, as separate clients
	// do: the device takes 20 initiations a second (burst 5) per source
	// IP, and these nine come back to back, with no client retransmit.
	n := 0
	for name, k := range keys {
		n++
		s := hardSender(t, server, netip.AddrFrom4([4]byte{127, 0, 4, byte(n)}))
		s.send(t, s.initiation(t, k))
		testkit.Eventually(t, 5*time.Second, name+": the lookup to fail", func() bool {
			return ev.count(hooks.PeerLookupFailed, k.Pub) == 1
		})
		if sd.HasPeer(k.Pub) {
			t.Fatalf("%s: peer installed", name)
		}
	}
	s := hardSender(t, server, netip.MustParseAddr("127.0.4.200"))
	s.send(t, s.initiation(t, good))
	testkit.Eventually(t, 5*time.Second, "a good key to be installed after the failures", func() bool {
		return sd.HasPeer(good.Pub)
	})
	if get, _ := sd.IpcGet(); !strings.Contains(get, "public_key="+static.PubHex()+"\n") || !strings.Contains(get, "allowed_ip=198.18.7.0/24\n") {
		t.Fatalf("the static peer lost its route:\n%s", get)
	}
	if st := sd.Stats(); st.ProviderErrors < uint64(len(cases)) {
		t.Fatalf("ProviderErrors = %d, want at least %d", st.ProviderErrors, len(cases))
	}
}

// TestJITEvictionAndReprovision: an idle just-in-time peer is evicted, a
// busy one and a static one are not, and the evicted one comes back on
// its next handshake.
func TestJITEvictionAndReprovision(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITProvider()
	ev := &jitEvents{}
	server, sd := newJITServer(t, p, device.JITConfig{IdleTimeout: time.Second, RevalidateInterval: -1}, ev, nil)
	idle := newJITClient(t, "198.18.1.1", server)
	busy := newJITClient(t, "198.18.1.2", server)
	p.set(idle.Key.Pub, idle.Addr)
	p.set(busy.Key.Pub, busy.Addr)
	static := testkit.NewKeypair()
	if err := sd.IpcSet(testkit.UAPI("public_key", static.PubHex(), "allowed_ip", "198.18.2.1/32")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*jitClient{idle, busy} {
		if err := c.Node.Echo(server.Addr, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for sd.HasPeer(idle.Key.Pub) {
		if time.Now().After(deadline) {
			t.Fatal("idle peer not evicted within 10s")
		}
		if err := busy.Node.Echo(server.Addr, 2*time.Second); err != nil {
			t.Fatalf("busy peer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ev.count(hooks.PeerEvicted, idle.Key.Pub) != 1 {
		t.Fatal("no eviction event for the idle peer")
	}
	if !sd.HasPeer(busy.Key.Pub) {
		t.Fatal("busy peer evicted")
	}
	if !sd.HasPeer(static.Pub) {
		t.Fatal("static peer evicted")
	}
	idle.rehandshake(server)
	if err := idle.Node.Echo(server.Addr, 10*time.Second); err != nil {
		t.Fatalf("evicted peer's next handshake: %v", err)
	}
	if n := idle.bind.InitSent.Load(); n != 2 {
		t.Fatalf("evicted client sent %d initiations in all, want 2 (one per handshake)", n)
	}
	if n := p.callsFor(idle.Key.Pub); n != 2 {
		t.Fatalf("provider asked %d times about the evicted peer, want 2", n)
	}
}

// TestJITCapEvictsLeastRecentlyActive: at the cap, installing a peer
// evicts the least recently active just-in-time peer.
func TestJITCapEvictsLeastRecentlyActive(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITProvider()
	ev := &jitEvents{}
	server, sd := newJITServer(t, p, device.JITConfig{MaxPeers: 2}, ev, nil)
	s := newJITSender(t, server)
	var ks []testkit.Keypair
	for i := 0; i < 3; i++ {
		k := testkit.NewKeypair()
		ks = append(ks, k)
		p.set(k.Pub, netip.AddrFrom4([4]byte{198, 18, 1, byte(i + 1)}))
		s.send(t, s.initiation(t, k))
		testkit.Eventually(t, 5*time.Second, "install", func() bool { return sd.HasPeer(k.Pub) })
	}
	if sd.HasPeer(ks[0].Pub) || !sd.HasPeer(ks[1].Pub) {
		t.Fatalf("after the third install: first installed %v, second %v; want false, true",
			sd.HasPeer(ks[0].Pub), sd.HasPeer(ks[1].Pub))
	}
	if ev.count(hooks.PeerEvicted, ks[0].Pub) != 1 {
		t.Fatal("no eviction event for the least recently active peer")
	}
}

// TestJITRevocation: revalidation removes a key the provider no longer
// knows, and its next initiation is refused; while the provider is down,
// installed peers stay.
func TestJITRevocation(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITProvider()
	ev := &jitEvents{}
	server, sd := newJITServer(t, p, device.JITConfig{RevalidateInterval: 300 * time.Millisecond}, ev, nil)
	c := newJITClient(t, "198.18.1.1", server)
	p.set(c.Key.Pub, c.Addr)
	if err := c.Node.Echo(server.Addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// Outage: revalidation fails, the peer stays and keeps working.
	p.mu.Lock()
	p.answer = func(context.Context, hooks.PublicKey) (hooks.PeerConfig, error) {
		return hooks.PeerConfig{}, errors.New("control plane down")
	}
	p.mu.Unlock()
	before := p.callsFor(c.Key.Pub)
	testkit.Eventually(t, 10*time.Second, "two revalidations during the outage", func() bool {
		return p.callsFor(c.Key.Pub) >= before+2
	})
	if !sd.HasPeer(c.Key.Pub) {
		t.Fatal("provider outage removed an installed peer")
	}
	if err := c.Node.Echo(server.Addr, 5*time.Second); err != nil {
		t.Fatalf("during the outage: %v", err)
	}

	// Revocation.
	p.mu.Lock()
	p.answer = nil
	p.mu.Unlock()
	p.del(c.Key.Pub)
	testkit.Eventually(t, 10*time.Second, "the revoked peer to be removed", func() bool {
		return !sd.HasPeer(c.Key.Pub)
	})
	if ev.count(hooks.PeerRevoked, c.Key.Pub) != 1 {
		t.Fatal("no revocation event")
	}
	c.rehandshake(server)
	inits := c.bind.InitSent.Load()
	if err := c.Node.Echo(server.Addr, 2*time.Second); err == nil {
		t.Fatal("revoked client still gets through")
	}
	if c.bind.InitSent.Load() <= inits {
		t.Fatal("revoked client sent no new initiation")
	}
	if sd.HasPeer(c.Key.Pub) {
		t.Fatal("revoked key installed again")
	}
}

// TestJITSQLiteStore: the SQLite store serves a full handshake (HTTP
// through the tunnel), and removing the key from the store and the device
// (what `wghooks peers remove` does) cuts it off at once.
func TestJITSQLiteStore(t *testing.T) {
	testkit.CheckLeaks(t)
	store, err := sqlstore.Open(filepath.Join(t.TempDir(), "peers.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	server, sd := newJITServer(t, store, device.JITConfig{}, nil, nil)
	testkit.ServeHTTP(t, server, "hello from the gateway")
	c := newJITClient(t, "198.18.1.1", server)
	ctx := context.Background()
	if err := store.Put(ctx, sqlstore.Peer{PeerConfig: hooks.PeerConfig{
		PublicKey:  c.Key.Pub,
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(c.Addr, 32)},
	}}); err != nil {
		t.Fatal(err)
	}
	body, err := c.Node.Get(server.Addr, 10*time.Second)
	if err != nil || body != "hello from the gateway" {
		t.Fatalf("HTTP through a peer from the SQLite store: %q, %v", body, err)
	}
	if n := c.bind.InitSent.Load(); n != 1 {
		t.Fatalf("client sent %d initiations, want 1", n)
	}

	if _, err := store.Delete(ctx, c.Key.Pub); err != nil {
		t.Fatal(err)
	}
	if err := sd.IpcSet(testkit.UAPI("public_key", c.Key.PubHex(), "remove", "true")); err != nil {
		t.Fatal(err)
	}
	if sd.HasPeer(c.Key.Pub) {
		t.Fatal("removed peer still installed")
	}
	c.rehandshake(server)
	if err := c.Node.Echo(server.Addr, 2*time.Second); err == nil {
		t.Fatal("removed client still gets through")
	}
	if sd.HasPeer(c.Key.Pub) {
		t.Fatal("removed key installed again")
	}
}

// TestJITHTTPProvider: an HTTP control plane (httptest) serves a full
// handshake.
func TestJITHTTPProvider(t *testing.T) {
	testkit.CheckLeaks(t)
	backing := newJITProvider()
	cp := httptest.NewServer(httpprovider.Handler(backing, "t0ken"))
	t.Cleanup(cp.Close)
	hp, err := httpprovider.New(httpprovider.Config{URL: cp.URL + "/v1/peers", Token: "t0ken"})
	if err != nil {
		t.Fatal(err)
	}
	server, sd := newJITServer(t, hp, device.JITConfig{}, nil, nil)
	testkit.ServeHTTP(t, server, "hello over http-provisioned peer")
	c := newJITClient(t, "198.18.1.1", server)
	backing.set(c.Key.Pub, c.Addr)
	body, err := c.Node.Get(server.Addr, 10*time.Second)
	if err != nil || body != "hello over http-provisioned peer" {
		t.Fatalf("HTTP through a peer from the HTTP provider: %q, %v", body, err)
	}
	if n := c.bind.InitSent.Load(); n != 1 {
		t.Fatalf("client sent %d initiations, want 1", n)
	}
	if !sd.HasPeer(c.Key.Pub) || backing.callsFor(c.Key.Pub) != 1 {
		t.Fatal("peer not installed through exactly one control-plane request")
	}
	cp.CloseClientConnections()
}

// TestJITPersistentKeepalive: a peer whose configuration asks for
// persistent keepalive still completes its first handshake with one
// initiation (the device does not start a crossing handshake of its
// own), and gets its keepalive once answered.
func TestJITPersistentKeepalive(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITProvider()
	log := testkit.NewLog(t, "server")
	server, sd := newJITServer(t, p, device.JITConfig{}, nil, log)
	c := newJITClient(t, "198.18.1.1", server)
	p.mu.Lock()
	p.peers[c.Key.Pub] = hooks.PeerConfig{
		AllowedIPs:          []netip.Prefix{netip.PrefixFrom(c.Addr, 32)},
		PersistentKeepalive: 25 * time.Second,
	}
	p.mu.Unlock()
	if err := c.Node.Echo(server.Addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := c.bind.InitSent.Load(); n != 1 {
		t.Fatalf("client sent %d initiations, want 1", n)
	}
	testkit.Eventually(t, 5*time.Second, "the keepalive to be configured", func() bool {
		get, _ := sd.IpcGet()
		return strings.Contains(get, "persistent_keepalive_interval=25")
	})
	if n := log.Count("Failed to send handshake initiation"); n != 0 {
		t.Fatalf("the device tried %d initiations of its own", n)
	}
}

// TestJITHeldKeyPassedToDevice: an initiation from a new source claiming
// a key the gateway already holds goes to the device, which authenticates
// it itself: a forged claim of that key gets no answer, the genuine
// initiation behind it gets its response, and neither costs a lookup.
func TestJITHeldKeyPassedToDevice(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newJITProvider()
	server, sd := newJITServer(t, p, device.JITConfig{}, nil, nil)
	held, attacker := testkit.NewKeypair(), testkit.NewKeypair()
	if err := sd.IpcSet(testkit.UAPI("public_key", held.PubHex(), "allowed_ip", "198.18.1.7/32")); err != nil {
		t.Fatal(err)
	}
	s := newJITSender(t, server)
	readResponse := func(within time.Duration) (uint32, bool) {
		buf := make([]byte, 256)
		s.c.SetReadDeadline(time.Now().Add(within))
		for {
			n, err := s.c.Read(buf)
			if err != nil {
				return 0, false
			}
			if r, ok := conn.ResponseReceiver(buf[:n]); ok {
				return r, true
			}
		}
	}

	forged := s.claiming(t, held.Pub, attacker)
	s.send(t, forged)
	if r, ok := readResponse(time.Second); ok {
		t.Fatalf("the device answered a forged claim of a key it holds (receiver %d)", r)
	}
	genuine := s.initiation(t, held)
	s.send(t, genuine)
	r, ok := readResponse(10 * time.Second)
	if !ok || r != conn.InitiationSender(genuine) {
		t.Fatalf("genuine initiation of a held key: response %v (receiver %d), want one for sender %d", ok, r, conn.InitiationSender(genuine))
	}
	if n := p.totalCalls(); n != 0 {
		t.Fatalf("provider asked %d times about a key the device holds, want 0", n)
	}
	if st := sd.Stats(); st.InitiationsDecoded != 2 || st.PeerMisses != 0 {
		t.Fatalf("stats: %d decoded, %d misses; want 2 (both initiations, from a new source) and 0", st.InitiationsDecoded, st.PeerMisses)
	}
}

package tests

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

// An IPv6 address that does not answer and an IPv4 one that does: the
// hostname endpoint tries IPv6 first, then IPv4 without waiting for a
// handshake retry, and the tunnel works. Upstream, given the address `wg`
// would have resolved (IPv6 first), stays down.
func TestEndpointsIPv6DeadFailsOverToIPv4(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newEpPair(t, device.Config{}, []string{"::1", "127.0.0.2"}, "::1")

	took, err := p.client.PingUntil(p.server.Addr, time.Second, 15*time.Second)
	if err != nil {
		t.Fatalf("no ping through the tunnel: %v", err)
	}
	t.Logf("first ping reply after %v", took)
	if got, want := testkit.PeerValue(t, p.dc, p.serverPk, "endpoint"), p.relayAddr("127.0.0.2"); got != want {
		t.Errorf("endpoint = %q, want %q (the live IPv4 address)", got, want)
	}
	if n := p.dc.Stats().HandshakesSent; n > 2 {
		t.Errorf("%d handshake initiations sent, want at most 2 (one retry)", n)
	}
	if v := testkit.PeerValue(t, p.dc, p.serverPk, "wghooks_endpoint"); v != fmt.Sprintf("vpn.test:%d", p.port) {
		t.Errorf("wghooks_endpoint = %q", v)
	}
	if v := testkit.PeerValue(t, p.dc, p.serverPk, "wghooks_endpoint_candidates"); v != p.relayAddr("::1")+","+p.relayAddr("127.0.0.2") {
		t.Errorf("wghooks_endpoint_candidates = %q, want IPv6 first", v)
	}
	if p.relays["127.0.0.2"].In() == 0 {
		t.Error("nothing went through the IPv4 relay")
	}

	// Upstream with the same server: `wg set ... endpoint vpn.test:PORT`
	// resolves once, to the IPv6 address, and never tries another.
	up, du := testkit.NewUpstream(t, "198.18.40.3", nil)
	testkit.AddPeer(t, p.ds, up, false)
	if err := du.IpcSet(testkit.UAPI("public_key", p.server.Key.PubHex(), "allowed_ip", "198.18.40.1/32",
		"endpoint", p.relayAddr("::1"))); err != nil {
		t.Fatal(err)
	}
	if _, err := up.PingUntil(p.server.Addr, time.Second, 7*time.Second); err == nil {
		t.Fatal("upstream got through a dead IPv6 address: the test proves nothing")
	}
}

// Three A records, the first two dead (nothing listens on the first, the
// second drops everything): the third is chosen.
func TestEndpointsThirdRecordChosen(t *testing.T) {
	testkit.CheckLeaks(t)
	p := newEpPair(t, device.Config{}, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, "127.0.0.3")
	p.relays["127.0.0.2"].Close() // nothing listens there any more

	took, err := p.client.PingUntil(p.server.Addr, time.Second, 15*time.Second)
	if err != nil {
		t.Fatalf("no ping through the tunnel: %v", err)
	}
	t.Logf("first ping reply after %v", took)
	if got, want := testkit.PeerValue(t, p.dc, p.serverPk, "endpoint"), p.relayAddr("127.0.0.4"); got != want {
		t.Errorf("endpoint = %q, want %q (the third record)", got, want)
	}
	if n := p.dc.Stats().HandshakesSent; n > 2 {
		t.Errorf("%d handshake initiations sent, want at most 2", n)
	}
}

// The DNS answer changes: after the TTL the new address is used, and the
// old one is left even though it still works.
func TestEndpointsDNSChangeFollowedAfterTTL(t *testing.T) {
	testkit.CheckLeaks(t)
	cfg := device.Config{}
	cfg.Endpoints.MinTTL = 200 * time.Millisecond
	p := newEpPair(t, cfg, []string{"127.0.0.2", "127.0.0.3"})
	p.res.set(time.Second, "127.0.0.2")
	// The first resolution (TTL an hour) already ran or is running: ask
	// again by setting the name anew.
	if err := p.dc.IpcSet(testkit.UAPI("public_key", p.server.Key.PubHex(), "wghooks_endpoint", "")); err != nil {
		t.Fatal(err)
	}
	if err := p.dc.IpcSet(testkit.UAPI("public_key", p.server.Key.PubHex(), "wghooks_endpoint", fmt.Sprintf("vpn.test:%d", p.port))); err != nil {
		t.Fatal(err)
	}
	if _, err := p.client.PingUntil(p.server.Addr, time.Second, 15*time.Second); err != nil {
		t.Fatalf("no ping through the tunnel: %v", err)
	}
	testkit.Eventually(t, 5*time.Second, "endpoint on the first address", func() bool {
		return testkit.PeerValue(t, p.dc, p.serverPk, "endpoint") == p.relayAddr("127.0.0.2")
	})

	p.res.set(time.Second, "127.0.0.3")
	asked := p.res.lastCall() // the answer before the change expires 1 s after this
	testkit.Eventually(t, 10*time.Second, "endpoint on the new address", func() bool {
		return testkit.PeerValue(t, p.dc, p.serverPk, "endpoint") == p.relayAddr("127.0.0.3")
	})
	took := time.Since(asked)
	t.Logf("moved to the new address %v after the previous answer (TTL 1s)", took)
	if took < 900*time.Millisecond {
		t.Errorf("moved %v after the previous answer, before its 1 s TTL ran out", took)
	}
	before := p.relays["127.0.0.3"].In()
	if _, err := p.client.PingUntil(p.server.Addr, time.Second, 15*time.Second); err != nil {
		t.Fatalf("no ping after the move: %v", err)
	}
	if p.relays["127.0.0.3"].In() == before {
		t.Error("the ping did not go through the new address")
	}
}

// IPv6 is dead at first, so the tunnel runs over IPv4; when IPv6 comes
// back the peer moves back to it (fail-back), and stays there.
func TestEndpointsFailbackToIPv6(t *testing.T) {
	testkit.CheckLeaks(t)
	cfg := device.Config{}
	cfg.Endpoints.FailbackInterval = time.Second
	p := newEpPair(t, cfg, []string{"::1", "127.0.0.2"}, "::1")
	if _, err := p.client.PingUntil(p.server.Addr, time.Second, 15*time.Second); err != nil {
		t.Fatalf("no ping through the tunnel: %v", err)
	}
	if got := testkit.PeerValue(t, p.dc, p.serverPk, "endpoint"); got != p.relayAddr("127.0.0.2") {
		t.Fatalf("endpoint = %q, want the IPv4 address while IPv6 is dead", got)
	}
	pg := testkit.NewPinger(t, p.client, p.server.Addr)
	p.relays["::1"].Restore()
	back := time.Now()
	// Each fail-back attempt (one per upstream RekeyTimeout, 5 s) sends
	// the initiation to IPv6 first and the original to IPv4 right after;
	// the server answers whichever reaches it first. Through the test's
	// two relays, on a loaded machine, the IPv4 one can win a few times
	// in a row: allow a dozen attempts, not four.
	const within = 60 * time.Second
	deadline := time.Now().Add(within)
	for testkit.PeerValue(t, p.dc, p.serverPk, "endpoint") != p.relayAddr("::1") {
		if time.Now().After(deadline) {
			t.Fatalf("still on %s %v after IPv6 came back", testkit.PeerValue(t, p.dc, p.serverPk, "endpoint"), within)
		}
		pg.Send()
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(back)
	for i := 0; i < 10; i++ {
		pg.Send()
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	lost, sent := pg.Lost(time.Second)
	t.Logf("back on IPv6 %v after it came back; %d of %d pings lost", took.Round(time.Millisecond), lost, sent)
	if lost > 0 {
		t.Errorf("%d of %d pings lost during fail-back", lost, sent)
	}
	if got := testkit.PeerValue(t, p.dc, p.serverPk, "endpoint"); got != p.relayAddr("::1") {
		t.Errorf("endpoint = %q after fail-back, want IPv6 kept", got)
	}
}

// Traffic is flowing when the address in use goes dead: the silence is
// measured against the round trip, a probe handshake goes unanswered, its
// copy and the session's packets go to the next candidate, and the tunnel
// is back there.
func TestEndpointsTrafficMovesWhenRepliesStop(t *testing.T) {
	testkit.CheckLeaks(t)
	// The tunnel must start on IPv6 for this test. Which family a first
	// handshake lands on with both paths alive is a race the initiation to
	// IPv6 is only favoured to win (its IPv4 copy follows a stagger later;
	// on a loaded machine the IPv4 copy can reach the server first), so
	// the IPv4 path starts cut and comes back once the tunnel is up. What
	// does not depend on load is checked instead: IPv6 heads the
	// happy-eyeballs order, and the session is on IPv6, the only live path.
	p := newEpPair(t, device.Config{}, []string{"::1", "127.0.0.2"}, "127.0.0.2")
	if _, err := p.client.PingUntil(p.server.Addr, time.Second, 15*time.Second); err != nil {
		t.Fatalf("no ping through the tunnel: %v", err)
	}
	st, ok := p.dc.EndpointStatus(p.serverPk)
	if want := []netip.AddrPort{netip.MustParseAddrPort(p.relayAddr("::1")), netip.MustParseAddrPort(p.relayAddr("127.0.0.2"))}; !ok || !slices.Equal(st.Candidates, want) {
		t.Fatalf("candidates = %v (hostname peer: %v), want %v: IPv6 first", st.Candidates, ok, want)
	}
	if got := testkit.PeerValue(t, p.dc, p.serverPk, "endpoint"); got != p.relayAddr("::1") {
		t.Fatalf("endpoint = %q, want the IPv6 address (the only live path)", got)
	}
	p.relays["127.0.0.2"].Restore()
	hs := p.dc.Stats().HandshakesSent
	pg := testkit.NewPinger(t, p.client, p.server.Addr)
	for i := 0; i < 5; i++ {
		pg.Send()
		time.Sleep(100 * time.Millisecond)
	}
	p.relays["::1"].Cut()
	cut := time.Now()
	var took time.Duration
	for {
		if _, got, ok := pg.FirstAnswer(cut, 0); ok {
			took = got.Sub(cut)
			break
		}
		if time.Since(cut) > 15*time.Second {
			t.Fatal("tunnel not restored 15 s after the IPv6 path died")
		}
		pg.Send()
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("traffic restored %v after the path died", took.Round(time.Millisecond))
	if got := testkit.PeerValue(t, p.dc, p.serverPk, "endpoint"); got != p.relayAddr("127.0.0.2") {
		t.Errorf("endpoint = %q, want the IPv4 address", got)
	}
	// The silence is settled by one probe handshake, whose copy the IPv4
	// address answers; upstream may add one initiation of its own for
	// the pings queued meanwhile.
	if n := p.dc.Stats().HandshakesSent - hs; n > 2 {
		t.Errorf("%d handshake messages sent during the move, want the probe and at most one more", n)
	}
	if p.dc.Stats().EndpointFailovers == 0 {
		t.Error("no failover counted")
	}
	// The peer had another address: the endpoint failover moves it, and
	// flow escape, which waits one round-trip timeout longer, does not
	// also rebind.
	if n := p.dc.Stats().FlowEscapes; n != 0 {
		t.Errorf("%d flow escapes besides the failover, want 0", n)
	}
}

// Bad input gets a clear error and never blocks configuration or the
// data path.
func TestEndpointsBadInput(t *testing.T) {
	testkit.CheckLeaks(t)
	cfg := device.Config{}
	res := &epResolver{}
	res.hang = true
	cfg.Endpoints.Resolver = res
	cfg.Endpoints.ResolveTimeout = 300 * time.Millisecond
	a, d := testkit.NewWghooks(t, "198.18.41.1", cfg)
	_ = a
	peer := testkit.NewKeypair()
	if err := d.IpcSet(testkit.UAPI("public_key", peer.PubHex(), "allowed_ip", "198.18.41.2/32")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"vpn.test", "vpn.test:0", "vpn.test:65536", "vpn.test:port", "fd00::1:51820", "bad host:1", "[fd00::1:51820", ":51820"} {
		err := d.IpcSet(testkit.UAPI("public_key", peer.PubHex(), "wghooks_endpoint", bad))
		if err == nil {
			t.Errorf("wghooks_endpoint=%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "failed to") || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("wghooks_endpoint=%q: error %q does not quote the input", bad, err)
		}
	}
	start := time.Now()
	if err := d.IpcSet(testkit.UAPI("public_key", peer.PubHex(), "wghooks_endpoint", "hangs.test:51820")); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("setting a hostname took %v: resolution must not block configuration", took)
	}
	testkit.Eventually(t, 5*time.Second, "resolution error reported", func() bool {
		return strings.Contains(testkit.PeerValue(t, d, peer.Pub, "wghooks_endpoint_error"), "hangs.test")
	})
	t.Logf("error: %s", testkit.PeerValue(t, d, peer.Pub, "wghooks_endpoint_error"))

	res.mu.Lock()
	res.hang = false
	res.err = nil
	res.addrs = nil // a name without records
	res.mu.Unlock()
	if err := d.IpcSet(testkit.UAPI("public_key", peer.PubHex(), "wghooks_endpoint", "empty.test:51820")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "no-records error reported", func() bool {
		return strings.Contains(testkit.PeerValue(t, d, peer.Pub, "wghooks_endpoint_error"), "no A or AAAA records")
	})
	// A peer that does not exist.
	other := testkit.NewKeypair()
	if err := d.SetEndpointHost(other.Pub, "vpn.test:51820"); err == nil {
		t.Error("hostname for a missing peer accepted")
	}
}

// The cached source address is reset over and over, by the Go method and
// the UAPI key, while pings flow: none is lost.
func TestEndpointsSourceResetLosesNothing(t *testing.T) {
	testkit.CheckLeaks(t)
	a, da := testkit.NewWghooks(t, "198.18.42.1", device.Config{})
	b, db := testkit.NewWghooks(t, "198.18.42.2", device.Config{})
	testkit.AddPeer(t, da, b, true)
	testkit.AddPeer(t, db, a, true)
	if _, err := a.PingUntil(b.Addr, time.Second, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	before := da.Stats().SourceResets
	pg := testkit.NewPinger(t, a, b.Addr)
	for i := 0; i < 40; i++ {
		switch i % 3 {
		case 0:
			if err := da.ResetSource(b.Key.Pub); err != nil {
				t.Fatal(err)
			}
		case 1:
			if err := da.IpcSet(testkit.UAPI("wghooks_reset_source", "true")); err != nil {
				t.Fatal(err)
			}
		case 2:
			if err := da.IpcSet(testkit.UAPI("public_key", b.Key.PubHex(), "wghooks_reset_source", "true")); err != nil {
				t.Fatal(err)
			}
		}
		pg.Send()
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	if lost, sent := pg.Lost(time.Second); lost > 0 || sent != 40 {
		t.Errorf("%d of %d pings lost while resetting source addresses", lost, sent)
	}
	if got := da.Stats().SourceResets - before; got < 40 {
		t.Errorf("SourceResets grew by %d, want at least 40", got)
	}
	if got := testkit.PeerValue(t, da, b.Key.Pub, "endpoint"); got != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), b.Port).String() {
		t.Errorf("endpoint = %q after resets", got)
	}
	if err := da.IpcSet(testkit.UAPI("wghooks_reset_source", "yes")); err == nil {
		t.Error("wghooks_reset_source=yes accepted")
	}
}

// Hostnames from the configuration (EndpointConfig.Hosts, which the daemon
// fills from a wg-quick style file) apply when the peer is configured,
// also after the device started; the peer's removal and return keep it.
func TestEndpointsConfigHostsApplyWhenPeerAppears(t *testing.T) {
	testkit.CheckLeaks(t)
	server, ds := testkit.NewWghooks(t, "198.18.44.1", device.Config{})
	if err := ds.IpcSet(testkit.UAPI("listen_port", fmt.Sprint(server.Port))); err != nil {
		t.Fatal(err)
	}
	res := &epResolver{}
	res.set(time.Hour, "127.0.0.1")
	cfg := device.Config{}
	cfg.Endpoints.Resolver = res
	cfg.Endpoints.Hosts = map[wgdevice.NoisePublicKey]string{server.Key.Pub: fmt.Sprintf("vpn.test:%d", server.Port)}
	client, dc := testkit.NewWghooks(t, "198.18.44.2", cfg)
	testkit.AddPeer(t, ds, client, false)
	want := fmt.Sprintf("127.0.0.1:%d", server.Port)
	for round := 0; round < 2; round++ {
		testkit.AddPeer(t, dc, server, false) // no endpoint: the name gives it
		testkit.Eventually(t, 5*time.Second, "the configured hostname applied", func() bool {
			return testkit.PeerValue(t, dc, server.Key.Pub, "endpoint") == want
		})
		if _, err := client.PingUntil(server.Addr, time.Second, 10*time.Second); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := dc.IpcSet(testkit.UAPI("public_key", server.Key.PubHex(), "remove", "true")); err != nil {
			t.Fatal(err)
		}
	}
}

package tests

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"wghooks/device"
)

// An IPv6 address that does not answer and an IPv4 one that does: the
// hostname endpoint tries IPv6 first, then IPv4 without waiting for a
// handshake retry, and the tunnel works. Upstream, given the address `wg`
// would have resolved (IPv6 first), stays down.
func TestEndpointsIPv6DeadFailsOverToIPv4(t *testing.T) {
	checkLeaks(t)
	p := newEpPair(t, device.Config{}, []string{"::1", "127.0.0.2"}, "::1")

	took, err := pingUntil(t, p.client, p.server.addr, time.Second, 15*time.Second)
	if err != nil {
		t.Fatalf("no ping through the tunnel: %v", err)
	}
	t.Logf("first ping reply after %v", took)
	if got, want := endpointOf(t, p.dc, p.serverPk), p.relayAddr("127.0.0.2"); got != want {
		t.Errorf("endpoint = %q, want %q (the live IPv4 address)", got, want)
	}
	if n := p.dc.Stats().HandshakesSent; n > 2 {
		t.Errorf("%d handshake initiations sent, want at most 2 (one retry)", n)
	}
	if v := peerValue(t, p.dc, p.serverPk, "wghooks_endpoint"); v != fmt.Sprintf("vpn.test:%d", p.port) {
		t.Errorf("wghooks_endpoint = %q", v)
	}
	if v := peerValue(t, p.dc, p.serverPk, "wghooks_endpoint_candidates"); v != p.relayAddr("::1")+","+p.relayAddr("127.0.0.2") {
		t.Errorf("wghooks_endpoint_candidates = %q, want IPv6 first", v)
	}
	if p.relays["127.0.0.2"].In() == 0 {
		t.Error("nothing went through the IPv4 relay")
	}

	// Upstream with the same server: `wg set ... endpoint vpn.test:PORT`
	// resolves once, to the IPv6 address, and never tries another.
	up, du := newUpstreamNode(t, "198.18.40.3")
	peerWith(t, p.ds, up, false)
	if err := du.IpcSet(uapiCfg("public_key", p.server.key.pubHex(), "allowed_ip", "198.18.40.1/32",
		"endpoint", p.relayAddr("::1"))); err != nil {
		t.Fatal(err)
	}
	if _, err := pingUntil(t, up, p.server.addr, time.Second, 7*time.Second); err == nil {
		t.Fatal("upstream got through a dead IPv6 address: the test proves nothing")
	}
}

// Three A records, the first two dead (nothing listens on the first, the
// second drops everything): the third is chosen.
func TestEndpointsThirdRecordChosen(t *testing.T) {
	checkLeaks(t)
	p := newEpPair(t, device.Config{}, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, "127.0.0.3")
	p.relays["127.0.0.2"].Close() // nothing listens there any more

	took, err := pingUntil(t, p.client, p.server.addr, time.Second, 15*time.Second)
	if err != nil {
		t.Fatalf("no ping through the tunnel: %v", err)
	}
	t.Logf("first ping reply after %v", took)
	if got, want := endpointOf(t, p.dc, p.serverPk), p.relayAddr("127.0.0.4"); got != want {
		t.Errorf("endpoint = %q, want %q (the third record)", got, want)
	}
	if n := p.dc.Stats().HandshakesSent; n > 2 {
		t.Errorf("%d handshake initiations sent, want at most 2", n)
	}
}

// The DNS answer changes: after the TTL the new address is used, and the
// old one is left even though it still works.
func TestEndpointsDNSChangeFollowedAfterTTL(t *testing.T) {
	checkLeaks(t)
	cfg := device.Config{}
	cfg.Endpoints.MinTTL = 200 * time.Millisecond
	p := newEpPair(t, cfg, []string{"127.0.0.2", "127.0.0.3"})
	p.res.set(time.Second, "127.0.0.2")
	// The first resolution (TTL an hour) already ran or is running: ask
	// again by setting the name anew.
	if err := p.dc.IpcSet(uapiCfg("public_key", p.server.key.pubHex(), "wghooks_endpoint", "")); err != nil {
		t.Fatal(err)
	}
	if err := p.dc.IpcSet(uapiCfg("public_key", p.server.key.pubHex(), "wghooks_endpoint", fmt.Sprintf("vpn.test:%d", p.port))); err != nil {
		t.Fatal(err)
	}
	if _, err := pingUntil(t, p.client, p.server.addr, time.Second, 15*time.Second); err != nil {
		t.Fatalf("no ping through the tunnel: %v", err)
	}
	eventually(t, 5*time.Second, "endpoint on the first address", func() bool {
		return endpointOf(t, p.dc, p.serverPk) == p.relayAddr("127.0.0.2")
	})

	p.res.set(time.Second, "127.0.0.3")
	asked := p.res.lastCall() // the answer before the change expires 1 s after this
	eventually(t, 10*time.Second, "endpoint on the new address", func() bool {
		return endpointOf(t, p.dc, p.serverPk) == p.relayAddr("127.0.0.3")
	})
	took := time.Since(asked)
	t.Logf("moved to the new address %v after the previous answer (TTL 1s)", took)
	if took < 900*time.Millisecond {
		t.Errorf("moved %v after the previous answer, before its 1 s TTL ran out", took)
	}
	before := p.relays["127.0.0.3"].In()
	if _, err := pingUntil(t, p.client, p.server.addr, time.Second, 15*time.Second); err != nil {
		t.Fatalf("no ping after the move: %v", err)
	}
	if p.relays["127.0.0.3"].In() == before {
		t.Error("the ping did not go through the new address")
	}
}

// IPv6 is dead at first, so the tunnel runs over IPv4; when IPv6 comes
// back the peer moves back to it (fail-back), and stays there.
func TestEndpointsFailbackToIPv6(t *testing.T) {
	checkLeaks(t)
	cfg := device.Config{}
	cfg.Endpoints.FailbackInterval = time.Second
	p := newEpPair(t, cfg, []string{"::1", "127.0.0.2"}, "::1")
	if _, err := pingUntil(t, p.client, p.server.addr, time.Second, 15*time.Second); err != nil {
		t.Fatalf("no ping through the tunnel: %v", err)
	}
	if got := endpointOf(t, p.dc, p.serverPk); got != p.relayAddr("127.0.0.2") {
		t.Fatalf("endpoint = %q, want the IPv4 address while IPv6 is dead", got)
	}
	pg := newEpPinger(t, p.client, p.server.addr)
	p.relays["::1"].Restore()
	back := time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for endpointOf(t, p.dc, p.serverPk) != p.relayAddr("::1") {
		if time.Now().After(deadline) {
			t.Fatalf("still on %s 20 s after IPv6 came back", endpointOf(t, p.dc, p.serverPk))
		}
		pg.send()
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(back)
	for i := 0; i < 10; i++ {
		pg.send()
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	lost, sent := pg.lost(time.Second)
	t.Logf("back on IPv6 %v after it came back; %d of %d pings lost", took.Round(time.Millisecond), lost, sent)
	if lost > 0 {
		t.Errorf("%d of %d pings lost during fail-back", lost, sent)
	}
	if got := endpointOf(t, p.dc, p.serverPk); got != p.relayAddr("::1") {
		t.Errorf("endpoint = %q after fail-back, want IPv6 kept", got)
	}
}

// Traffic is flowing when the address in use goes dead: the session's
// packets go to the next candidate and the tunnel is back without a new
// handshake.
func TestEndpointsTrafficMovesWhenRepliesStop(t *testing.T) {
	checkLeaks(t)
	p := newEpPair(t, device.Config{}, []string{"::1", "127.0.0.2"})
	if _, err := pingUntil(t, p.client, p.server.addr, time.Second, 15*time.Second); err != nil {
		t.Fatalf("no ping through the tunnel: %v", err)
	}
	if got := endpointOf(t, p.dc, p.serverPk); got != p.relayAddr("::1") {
		t.Fatalf("endpoint = %q, want IPv6 first", got)
	}
	hs := p.dc.Stats().HandshakesSent
	pg := newEpPinger(t, p.client, p.server.addr)
	for i := 0; i < 5; i++ {
		pg.send()
		time.Sleep(100 * time.Millisecond)
	}
	p.relays["::1"].Cut()
	cut := time.Now()
	var took time.Duration
	for {
		if d, ok := pg.firstAnsweredAfter(cut); ok {
			took = d
			break
		}
		if time.Since(cut) > 15*time.Second {
			t.Fatal("tunnel not restored 15 s after the IPv6 path died")
		}
		pg.send()
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("traffic restored %v after the path died", took.Round(time.Millisecond))
	if got := endpointOf(t, p.dc, p.serverPk); got != p.relayAddr("127.0.0.2") {
		t.Errorf("endpoint = %q, want the IPv4 address", got)
	}
	if n := p.dc.Stats().HandshakesSent - hs; n != 0 {
		t.Logf("%d handshakes sent during the move (none needed)", n)
	}
	if p.dc.Stats().EndpointFailovers == 0 {
		t.Error("no failover counted")
	}
}

// Bad input gets a clear error and never blocks configuration or the
// data path.
func TestEndpointsBadInput(t *testing.T) {
	checkLeaks(t)
	cfg := device.Config{}
	res := &epResolver{}
	res.hang = true
	cfg.Endpoints.Resolver = res
	cfg.Endpoints.ResolveTimeout = 300 * time.Millisecond
	a, d := newWghooksNode(t, "198.18.41.1", cfg)
	_ = a
	peer := newKeypair(t)
	if err := d.IpcSet(uapiCfg("public_key", peer.pubHex(), "allowed_ip", "198.18.41.2/32")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"vpn.test", "vpn.test:0", "vpn.test:65536", "vpn.test:port", "fd00::1:51820", "bad host:1", "[fd00::1:51820", ":51820"} {
		err := d.IpcSet(uapiCfg("public_key", peer.pubHex(), "wghooks_endpoint", bad))
		if err == nil {
			t.Errorf("wghooks_endpoint=%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "failed to") || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("wghooks_endpoint=%q: error %q does not quote the input", bad, err)
		}
	}
	start := time.Now()
	if err := d.IpcSet(uapiCfg("public_key", peer.pubHex(), "wghooks_endpoint", "hangs.test:51820")); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("setting a hostname took %v: resolution must not block configuration", took)
	}
	eventually(t, 5*time.Second, "resolution error reported", func() bool {
		return strings.Contains(peerValue(t, d, peer.pub, "wghooks_endpoint_error"), "hangs.test")
	})
	t.Logf("error: %s", peerValue(t, d, peer.pub, "wghooks_endpoint_error"))

	res.mu.Lock()
	res.hang = false
	res.err = nil
	res.addrs = nil // a name without records
	res.mu.Unlock()
	if err := d.IpcSet(uapiCfg("public_key", peer.pubHex(), "wghooks_endpoint", "empty.test:51820")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "no-records error reported", func() bool {
		return strings.Contains(peerValue(t, d, peer.pub, "wghooks_endpoint_error"), "no A or AAAA records")
	})
	// A peer that does not exist.
	other := newKeypair(t)
	if err := d.SetEndpointHost(other.pub, "vpn.test:51820"); err == nil {
		t.Error("hostname for a missing peer accepted")
	}
}

// The cached source address is reset over and over, by the Go method and
// the UAPI key, while pings flow: none is lost.
func TestEndpointsSourceResetLosesNothing(t *testing.T) {
	checkLeaks(t)
	a, da := newWghooksNode(t, "198.18.42.1", device.Config{})
	b, db := newWghooksNode(t, "198.18.42.2", device.Config{})
	peerWith(t, da, b, true)
	peerWith(t, db, a, true)
	if _, err := pingUntil(t, a, b.addr, time.Second, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	before := da.Stats().SourceResets
	pg := newEpPinger(t, a, b.addr)
	for i := 0; i < 40; i++ {
		switch i % 3 {
		case 0:
			if err := da.ResetSource(b.key.pub); err != nil {
				t.Fatal(err)
			}
		case 1:
			if err := da.IpcSet(uapiCfg("wghooks_reset_source", "true")); err != nil {
				t.Fatal(err)
			}
		case 2:
			if err := da.IpcSet(uapiCfg("public_key", b.key.pubHex(), "wghooks_reset_source", "true")); err != nil {
				t.Fatal(err)
			}
		}
		pg.send()
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	if lost, sent := pg.lost(time.Second); lost > 0 || sent != 40 {
		t.Errorf("%d of %d pings lost while resetting source addresses", lost, sent)
	}
	if got := da.Stats().SourceResets - before; got < 40 {
		t.Errorf("SourceResets grew by %d, want at least 40", got)
	}
	if got := endpointOf(t, da, b.key.pub); got != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), b.port).String() {
		t.Errorf("endpoint = %q after resets", got)
	}
	if err := da.IpcSet(uapiCfg("wghooks_reset_source", "yes")); err == nil {
		t.Error("wghooks_reset_source=yes accepted")
	}
}

// Hostnames from the configuration (EndpointConfig.Hosts, which the daemon
// fills from a wg-quick style file) apply when the peer is configured,
// also after the device started; the peer's removal and return keep it.
func TestEndpointsConfigHostsApplyWhenPeerAppears(t *testing.T) {
	checkLeaks(t)
	server, ds := newWghooksNode(t, "198.18.44.1", device.Config{})
	if err := ds.IpcSet(uapiCfg("listen_port", fmt.Sprint(server.port))); err != nil {
		t.Fatal(err)
	}
	res := &epResolver{}
	res.set(time.Hour, "127.0.0.1")
	cfg := device.Config{}
	cfg.Endpoints.Resolver = res
	cfg.Endpoints.Hosts = map[wgdevice.NoisePublicKey]string{server.key.pub: fmt.Sprintf("vpn.test:%d", server.port)}
	client, dc := newWghooksNode(t, "198.18.44.2", cfg)
	peerWith(t, ds, client, false)
	want := fmt.Sprintf("127.0.0.1:%d", server.port)
	for round := 0; round < 2; round++ {
		peerWith(t, dc, server, false) // no endpoint: the name gives it
		eventually(t, 5*time.Second, "the configured hostname applied", func() bool {
			return endpointOf(t, dc, server.key.pub) == want
		})
		if _, err := pingUntil(t, client, server.addr, time.Second, 10*time.Second); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := dc.IpcSet(uapiCfg("public_key", server.key.pubHex(), "remove", "true")); err != nil {
			t.Fatal(err)
		}
	}
}

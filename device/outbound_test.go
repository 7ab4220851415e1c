package device

import (
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"wghooks/hooks"
	"wghooks/uapi"
)

// TestRouteSetAgainstUpstream drives routeSet and upstream's own
// AllowedIPs (the slow, trusted reference) with the same random set
// transactions, and compares which addresses are covered.
func TestRouteSetAgainstUpstream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]noiseKey, 5)
	for i := range keys {
		keys[i][0] = byte(i + 1)
	}
	// The reference needs a *Peer per key; these are never used as peers.
	refPeers := map[noiseKey]*wgdevice.Peer{}
	for _, k := range keys {
		refPeers[k] = new(wgdevice.Peer)
	}
	var ref wgdevice.AllowedIPs
	var rs routeSet
	rs.init()
	held := map[noiseKey]bool{}

	prefixes := []string{
		"198.18.0.0/16", "198.18.0.0/24", "198.18.0.1/32", "198.18.0.2/32", "198.18.1.0/24", "0.0.0.0/0",
		"fd00::/64", "fd00::1/128", "fd00::2/128", "::/0",
	}
	addrs := []string{"198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.1.9", "198.19.0.1", "fd00::1", "fd00::2", "fd00::3", "fd01::1"}

	for round := 0; round < 2000; round++ {
		var lines []string
		if rng.IntN(50) == 0 {
			lines = append(lines, "replace_peers=true")
			for k := range held {
				ref.RemoveByPeer(refPeers[k])
				delete(held, k)
			}
		}
		k := keys[rng.IntN(len(keys))]
		lines = append(lines, "public_key="+hex.EncodeToString(k[:]))
		switch rng.IntN(8) {
		case 0:
			lines = append(lines, "remove=true")
			ref.RemoveByPeer(refPeers[k])
			delete(held, k)
		case 1:
			lines = append(lines, "replace_allowed_ips=true")
			ref.RemoveByPeer(refPeers[k])
			held[k] = true
		default:
			held[k] = true
		}
		if held[k] {
			for n := rng.IntN(3); n > 0; n-- {
				p := netip.MustParsePrefix(prefixes[rng.IntN(len(prefixes))])
				if rng.IntN(3) == 0 {
					lines = append(lines, "allowed_ip=-"+p.String())
					ref.Remove(p, refPeers[k])
				} else {
					lines = append(lines, "allowed_ip="+p.String())
					ref.Insert(p, refPeers[k])
				}
			}
		}
		set, err := uapi.ParseSet(lines, nil)
		if err != nil {
			t.Fatal(err)
		}
		rs.apply(set, func(k noiseKey) bool { return held[k] })
		for _, s := range addrs {
			a := netip.MustParseAddr(s)
			want := ref.Lookup(a.AsSlice()) != nil
			if got := rs.covers(a); got != want {
				t.Fatalf("round %d, after %q: covers(%s) = %v, upstream says %v", round, lines, a, got, want)
			}
		}
	}
}

// TestRouteSetSkipsPeersUpstreamDidNotCreate: lines for a peer upstream
// does not hold afterwards (update_only, the device's own key) route
// nothing.
func TestRouteSetSkipsPeersUpstreamDidNotCreate(t *testing.T) {
	var rs routeSet
	rs.init()
	set, err := uapi.ParseSet([]string{"public_key=" + strings.Repeat("01", 32), "update_only=true", "allowed_ip=198.18.0.1/32"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gen := rs.generation()
	rs.apply(set, func(noiseKey) bool { return false })
	if rs.covers(netip.MustParseAddr("198.18.0.1")) {
		t.Fatal("a peer upstream does not hold covers its allowed IP")
	}
	if rs.generation() == gen {
		t.Fatal("apply did not bump the generation")
	}
}

func TestPacketDst(t *testing.T) {
	v4 := make([]byte, 20)
	v4[0] = 0x45
	copy(v4[16:], []byte{198, 18, 0, 2})
	v6 := make([]byte, 40)
	v6[0] = 0x60
	a6 := netip.MustParseAddr("fd00::2").As16()
	copy(v6[24:], a6[:])
	for _, c := range []struct {
		pkt  []byte
		want string
	}{
		{v4, "198.18.0.2"},
		{v6, "fd00::2"},
		{v4[:19], ""},
		{v6[:39], ""},
		{nil, ""},
		{[]byte{0x50}, ""},
	} {
		got, ok := packetDst(c.pkt)
		if c.want == "" {
			if ok {
				t.Fatalf("packetDst(% x) = %s, want none", c.pkt, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(c.want) {
			t.Fatalf("packetDst = %s, %v; want %s", got, ok, c.want)
		}
	}
}

func TestCheckOutboundAnswer(t *testing.T) {
	dst := netip.MustParseAddr("198.18.0.2")
	key := hooks.PublicKey{7}
	ep := netip.MustParseAddrPort("127.0.0.1:51820")
	host := []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32")}
	for _, c := range []struct {
		name string
		cfg  hooks.PeerConfig
		want string // "" for accepted
	}{
		{"good", hooks.PeerConfig{PublicKey: key, AllowedIPs: host, Endpoint: ep}, ""},
		{"covering prefix", hooks.PeerConfig{PublicKey: key, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.9/24")}, Endpoint: ep}, ""},
		{"no key", hooks.PeerConfig{AllowedIPs: host, Endpoint: ep}, "names no public key"},
		{"no endpoint", hooks.PeerConfig{PublicKey: key, AllowedIPs: host}, "no endpoint"},
		{"other address", hooks.PeerConfig{PublicKey: key, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.3/32")}, Endpoint: ep}, "do not hold it"},
		{"invalid keepalive", hooks.PeerConfig{PublicKey: key, AllowedIPs: host, Endpoint: ep, PersistentKeepalive: -1}, "persistent keepalive"},
	} {
		err := checkOutboundAnswer(dst, c.cfg)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
		if c.name == "no endpoint" && !errors.Is(err, errNoEndpoint) {
			t.Errorf("no endpoint: %v does not match errNoEndpoint", err)
		}
	}
}

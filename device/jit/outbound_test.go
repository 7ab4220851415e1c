package jit

import (
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/uapi"
)

// TestRouteSetAgainstUpstream drives routeSet and upstream's own
// AllowedIPs (the slow, trusted reference) with the same random set
// transactions, and compares which addresses are covered.
func TestRouteSetAgainstUpstream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]feature.Key, 5)
	for i := range keys {
		keys[i][0] = byte(i + 1)
	}
	// The reference needs a *Peer per key; these are never used as peers.
	refPeers := map[feature.Key]*wgdevice.Peer{}
	for _, k := range keys {
		refPeers[k] = new(wgdevice.Peer)
	}
	var ref wgdevice.AllowedIPs
	var rs routeSet
	rs.init()
	held := map[feature.Key]bool{}

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
		rs.apply(set, func(k feature.Key) bool { return held[k] })
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
	rs.apply(set, func(feature.Key) bool { return false })
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

// TestOutboundMissBounds: a lookup is queued once per destination, a few
// packets are held per destination and a few hundred in all, a refused
// destination is not asked again, and a table full of refusals turns new
// destinations away without a lookup.
func TestOutboundMissBounds(t *testing.T) {
	o := &outbound{
		j:     &JIT{cfg: Config{}.withDefaults()},
		queue: make(chan netip.Addr, outboundQueueLen),
		dsts:  make(map[netip.Addr]*outDst),
	}
	pkt := []byte{0x45}
	dst := netip.MustParseAddr("198.18.0.2")
	for i := 0; i < maxHeldPerDst; i++ {
		if !o.miss(dst, pkt) {
			t.Fatalf("packet %d not held", i)
		}
	}
	if o.miss(dst, pkt) {
		t.Fatal("held more than maxHeldPerDst packets for one destination")
	}
	if len(o.queue) != 1 {
		t.Fatalf("%d lookups queued, want 1", len(o.queue))
	}
	<-o.queue
	o.release(dst, false, time.Hour)
	if o.held != 0 || o.miss(dst, pkt) || len(o.queue) != 0 {
		t.Fatalf("refused destination: %d held, %d queued; want none", o.held, len(o.queue))
	}

	// The held total is bounded across destinations.
	held := 0
	for i := 0; i < 2*maxHeldTotal; i++ {
		d := i / maxHeldPerDst // a full set of packets per destination
		if o.miss(netip.AddrFrom4([4]byte{198, 18, 1 + byte(d>>8), byte(d)}), pkt) {
			held++
		}
	}
	if len(o.queue) != 2*maxHeldTotal/maxHeldPerDst {
		t.Fatalf("%d lookups queued, want one per destination", len(o.queue))
	}
	if held != maxHeldTotal || o.held != maxHeldTotal {
		t.Fatalf("held %d packets (counted %d), want at most %d", held, o.held, maxHeldTotal)
	}

	// A table full of refusals turns a new destination away.
	for a := range o.dsts {
		o.release(a, false, time.Hour)
	}
	for len(o.queue) > 0 {
		<-o.queue
	}
	for i := 0; len(o.dsts) < maxOutboundDsts; i++ {
		o.dsts[netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})] = &outDst{until: time.Now().Add(time.Hour)}
	}
	if o.miss(netip.MustParseAddr("198.18.200.1"), pkt) || len(o.queue) != 0 {
		t.Fatal("a new destination was looked up with the table full of refusals")
	}
	if o.nextPrune.IsZero() {
		t.Fatal("a full table did not note when to look again")
	}
}

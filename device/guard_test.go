package device

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	"golang.org/x/crypto/curve25519"
	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tai64n"

	"wghooks/conn"
)

// guardRig is a guard on a device that has only what the guard reads: an
// identity, the known sources and the counters. Nothing is sent.
type guardRig struct {
	d   *Device
	g   *guard
	pub [32]byte
}

func newGuardRig(t *testing.T, rate int) *guardRig {
	t.Helper()
	var priv [32]byte
	rand.Read(priv[:])
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	d := &Device{cfg: Config{Guard: GuardConfig{Rate: rate}}, done: make(chan struct{})}
	d.setIdentity(hex.EncodeToString(priv[:]))
	g := newGuard(d)
	g.init()
	t.Cleanup(g.close)
	return &guardRig{d: d, g: g, pub: [32]byte(pub)}
}

// peer returns a sealer of genuine initiations from a new key.
func (r *guardRig) peer(t *testing.T) *conn.Sealer {
	t.Helper()
	var priv, eph [32]byte
	rand.Read(priv[:])
	rand.Read(eph[:])
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	s, err := conn.NewSealer([32]byte(pub), priv, r.pub, eph)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// answer makes src a known source, as the device's handshake response
// to it does.
func (r *guardRig) answer(src netip.AddrPort) {
	resp := make([]byte, conn.MessageResponseSize)
	binary.LittleEndian.PutUint32(resp, conn.MessageResponse)
	r.g.onSend([][]byte{resp}, &wgconn.StdNetEndpoint{AddrPort: src})
}

func (r *guardRig) passes(pkt []byte, src netip.AddrPort) bool {
	return r.g.onReceive(pkt, &wgconn.StdNetEndpoint{AddrPort: src}) == conn.Pass
}

// garbage returns an initiation-sized packet with a valid mac1 and
// random bytes inside: it costs upstream one X25519 before it fails.
func (r *guardRig) garbage() []byte {
	var gen wgdevice.CookieGenerator
	gen.Init(wgdevice.NoisePublicKey(r.pub))
	pkt := make([]byte, conn.MessageInitiationSize)
	rand.Read(pkt)
	binary.LittleEndian.PutUint32(pkt, conn.MessageInitiation)
	gen.AddMacs(pkt)
	return pkt
}

// TestGuardDropsReplays: copies of an initiation the guard let through
// are dropped, from the peer's own address or any other, and take
// nothing from the peer: its next real initiation passes.
func TestGuardDropsReplays(t *testing.T) {
	r := newGuardRig(t, 8)
	peer := r.peer(t)
	src := netip.MustParseAddrPort("198.18.0.1:51820")
	r.answer(src)
	ts := tai64n.Now()
	first := peer.Seal(1, ts)
	if !r.passes(first, src) {
		t.Fatal("a known peer's initiation was held")
	}
	for i := range 1000 {
		from := src
		if i%2 == 1 {
			from = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), 4000)
		}
		if r.passes(first, from) {
			t.Fatalf("copy %d of the initiation (from %v) passed", i, from)
		}
	}
	if n, m := r.d.stats.guardDropped.Load(), r.d.stats.replaysDropped.Load(); n != 1000 || m != 1000 {
		t.Errorf("guard counted %d dropped initiations, %d of them replays, want 1000 and 1000", n, m)
	}
	if r.g.flooded() {
		t.Error("copies alone made the guard require cookies: they took new-source tokens")
	}
	ts[11]++
	if !r.passes(peer.Seal(2, ts), src) {
		t.Error("the peer's next initiation was held after a replay flood")
	}
}

// TestGuardSpoofedKnownSource: a flood of valid-mac1 garbage that spoofs
// a known peer's address passes only within that source's budget and the
// new-source rate; then the guard requires cookies, and another known
// peer still passes at once. Before the budget, every packet passed to
// upstream, each costing an X25519.
func TestGuardSpoofedKnownSource(t *testing.T) {
	const rate = 8
	r := newGuardRig(t, rate)
	victim := netip.MustParseAddrPort("198.18.0.1:51820")
	other := netip.MustParseAddrPort("198.18.0.2:51820")
	r.answer(victim)
	r.answer(other)

	passed := 0
	for range 1000 {
		if r.passes(r.garbage(), victim) {
			passed++
		}
	}
	// The test runs in far less than a second; allow one refill of each.
	if max := knownBurst + rate + knownRate + rate; passed > max {
		t.Errorf("%d of 1000 spoofed initiations passed, want at most %d (the source's budget and the new-source rate)", passed, max)
	}
	if passed < knownBurst {
		t.Errorf("only %d spoofed initiations passed, want the source's budget (%d) at least", passed, knownBurst)
	}
	if !r.g.flooded() {
		t.Error("the guard does not require cookies during the flood")
	}
	if len(r.g.replies) == 0 {
		t.Error("no cookie reply was queued for the flood")
	}
	if !r.passes(r.peer(t).Seal(1, tai64n.Now()), other) {
		t.Error("another known peer's initiation was held during the spoofed flood")
	}
}

// TestGuardRelayOfManyPeers: one address carrying many peers' handshakes
// (a relay) passes at any rate as long as the device answers each, and
// never makes the guard require cookies.
func TestGuardRelayOfManyPeers(t *testing.T) {
	r := newGuardRig(t, 8)
	relay := netip.MustParseAddrPort("198.18.0.9:51820")
	r.answer(relay)
	peers := make([]*conn.Sealer, 100)
	for i := range peers {
		peers[i] = r.peer(t)
	}
	ts := tai64n.Now()
	for i := range 1000 {
		ts[11]++
		if !r.passes(peers[i%len(peers)].Seal(uint32(i), ts), relay) {
			t.Fatalf("answered handshake %d through the relay was held", i)
		}
		r.answer(relay) // the device's response
	}
	if r.g.flooded() || r.d.stats.guardDropped.Load() != 0 {
		t.Errorf("the relay's answered handshakes made the guard drop %d and require cookies (%v)", r.d.stats.guardDropped.Load(), r.g.flooded())
	}
}

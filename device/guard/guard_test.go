package guard

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tai64n"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/feature/featuretest"
)

// guardRig is a guard on a host that has only what the guard reads: an
// identity, the known sources and the counters. Nothing is sent.
type guardRig struct {
	h   *featuretest.Host
	g   *Guard
	pub [32]byte
}

func newGuardRig(t *testing.T, rate int) *guardRig {
	t.Helper()
	h, pub := featuretest.New(t)
	g := newGuard(h, Config{Rate: rate})
	t.Cleanup(g.Close)
	return &guardRig{h: h, g: g, pub: pub}
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
	// The core learns the source, then the guard sees the send.
	r.h.Sources().Seen(src, time.Now())
	r.g.OnSend([][]byte{resp}, &wgconn.StdNetEndpoint{AddrPort: src})
}

func (r *guardRig) passes(pkt []byte, src netip.AddrPort) bool {
	return r.g.OnReceive(pkt, &wgconn.StdNetEndpoint{AddrPort: src}) == conn.Pass
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
	if n, m := r.h.Counters().GuardDropped.Load(), r.h.Counters().ReplaysDropped.Load(); n != 1000 || m != 1000 {
		t.Errorf("guard counted %d dropped initiations, %d of them replays, want 1000 and 1000", n, m)
	}
	if r.g.Flooded() {
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
	if !r.g.Flooded() {
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
	if r.g.Flooded() || r.h.Counters().GuardDropped.Load() != 0 {
		t.Errorf("the relay's answered handshakes made the guard drop %d and require cookies (%v)", r.h.Counters().GuardDropped.Load(), r.g.Flooded())
	}
}

// TestSourceBudget: a known source passes knownBurst initiations at once,
// then knownRate per second; each answer gives one back.
func TestSourceBudget(t *testing.T) {
	var b budgets
	b.init()
	now := time.Now()
	a := netip.MustParseAddrPort("127.0.0.1:1")
	for i := range knownBurst {
		if !b.take(a, now) {
			t.Fatalf("initiation %d of a fresh known source refused, want %d at once", i, knownBurst)
		}
	}
	if b.take(a, now) {
		t.Fatal("a known source passed more than its burst at once")
	}
	later := now.Add(time.Second / knownRate)
	if !b.take(a, later) || b.take(a, later) {
		t.Fatal("a known source's budget did not refill by exactly one after 1/knownRate")
	}
	// Each answer gives one back at once: many handshakes through one
	// address (a relay) pass as long as the device answers them.
	for i := range 10 * knownBurst {
		b.refund(a)
		if !b.take(a, later) {
			t.Fatalf("answered initiation %d refused", i)
		}
	}
	if b.take(a, later) {
		t.Fatal("an unanswered initiation passed with the budget spent")
	}
	// A peer's retransmits (one per RekeyTimeout, each answered) never
	// run out.
	for i := range 100 {
		at := later.Add(time.Duration(i+1) * wgdevice.RekeyTimeout)
		if !b.take(a, at) {
			t.Fatalf("retransmit %d at RekeyTimeout intervals refused", i)
		}
		b.refund(a)
	}
	b.expire(later.Add(200*wgdevice.RekeyTimeout + feature.SourceTTL))
	if len(b.m) != 0 {
		t.Fatal("expire kept a budget untouched past SourceTTL")
	}
}

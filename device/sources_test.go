package device

import (
	"net/netip"
	"testing"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"
)

func TestSourceSet(t *testing.T) {
	var s sourceSet
	s.init()
	now := time.Now()
	a, b, c := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), netip.MustParseAddrPort("127.0.0.1:3")
	ka, kb := noiseKey{1}, noiseKey{2}

	// A decoded initiation only names the owner: it may be a replay.
	s.learn(a, ka, now)
	s.learn(b, kb, now)
	if s.known(a, now) || s.known(b, now) {
		t.Fatal("an authenticated initiation made its source known before the device answered it")
	}
	// The device's answer makes them known, and keeps the owner.
	s.seen(a, now)
	s.seen(b, now)
	s.seen(c, now) // owner unknown
	for _, src := range []netip.AddrPort{a, b, c} {
		if !s.known(src, now) {
			t.Fatalf("%v not known after the device answered it", src)
		}
	}
	if s.m[b].owner != kb {
		t.Fatal("seen lost the owner")
	}
	if s.known(a, now.Add(sourceTTL)) {
		t.Fatal("source known past its TTL")
	}
	s.purge([]noiseKey{ka})
	if s.known(a, now) || s.known(c, now) {
		t.Fatal("purge kept the removed owner's source or an unowned one")
	}
	if !s.known(b, now) {
		t.Fatal("purge dropped another owner's source")
	}
	s.seen(b, now.Add(time.Minute))
	s.expire(now.Add(sourceTTL + 30*time.Second))
	if !s.known(b, now.Add(sourceTTL+30*time.Second)) {
		t.Fatal("expire dropped a refreshed source")
	}

	// A source the device never answers is forgotten soon.
	d := netip.MustParseAddrPort("127.0.0.1:4")
	s.learn(d, ka, now)
	s.expire(now.Add(pendingTTL))
	if _, ok := s.m[d]; ok {
		t.Fatal("an unanswered source outlived pendingTTL")
	}
	s.purge(nil)
	if len(s.m) != 0 {
		t.Fatal("purge(nil) kept sources")
	}
}

// TestSourceBudget: a known source passes knownBurst initiations at once,
// then knownRate per second; an unknown or unanswered one none.
func TestSourceBudget(t *testing.T) {
	var s sourceSet
	s.init()
	now := time.Now()
	a, b := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2")
	s.learn(b, noiseKey{2}, now)
	if s.admit(a, now) || s.admit(b, now) {
		t.Fatal("an unknown or unanswered source was admitted")
	}
	s.seen(a, now)
	for i := range knownBurst {
		if !s.admit(a, now) {
			t.Fatalf("initiation %d of a fresh known source refused, want %d at once", i, knownBurst)
		}
	}
	if s.admit(a, now) {
		t.Fatal("a known source passed more than its burst at once")
	}
	later := now.Add(time.Second / knownRate)
	if !s.admit(a, later) || s.admit(a, later) {
		t.Fatal("a known source's budget did not refill by exactly one after 1/knownRate")
	}
	// Each answer gives one back at once: many handshakes through one
	// address (a relay) pass as long as the device answers them.
	for i := range 10 * knownBurst {
		s.seen(a, later)
		if !s.admit(a, later) {
			t.Fatalf("answered initiation %d refused", i)
		}
	}
	if s.admit(a, later) {
		t.Fatal("an unanswered initiation passed with the budget spent")
	}
	// A peer's retransmits (one per RekeyTimeout, each answered) never
	// run out.
	for i := range 100 {
		at := later.Add(time.Duration(i+1) * wgdevice.RekeyTimeout)
		if !s.admit(a, at) {
			t.Fatalf("retransmit %d at RekeyTimeout intervals refused", i)
		}
		s.seen(a, at)
	}
	if !s.known(a, now) {
		t.Fatal("admit forgot the source")
	}
}

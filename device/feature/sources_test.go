package feature

import (
	"net/netip"
	"testing"
	"time"
)

func TestSourceSet(t *testing.T) {
	s := NewSources()
	now := time.Now()
	a, b, c := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), netip.MustParseAddrPort("127.0.0.1:3")
	ka, kb := Key{1}, Key{2}

	// A decoded initiation only names the owner: it may be a replay.
	s.Learn(a, ka, now)
	s.Learn(b, kb, now)
	if s.Known(a, now) || s.Known(b, now) {
		t.Fatal("an authenticated initiation made its source known before the device answered it")
	}
	// The device's answer makes them known, and keeps the owner.
	s.Seen(a, now)
	s.Seen(b, now)
	s.Seen(c, now) // owner unknown
	for _, src := range []netip.AddrPort{a, b, c} {
		if !s.Known(src, now) {
			t.Fatalf("%v not known after the device answered it", src)
		}
	}
	if s.m[b].owner != kb {
		t.Fatal("seen lost the owner")
	}
	if s.Known(a, now.Add(SourceTTL)) {
		t.Fatal("source known past its TTL")
	}
	s.Purge([]Key{ka})
	if s.Known(a, now) || s.Known(c, now) {
		t.Fatal("purge kept the removed owner's source or an unowned one")
	}
	if !s.Known(b, now) {
		t.Fatal("purge dropped another owner's source")
	}
	s.Seen(b, now.Add(time.Minute))
	s.Expire(now.Add(SourceTTL + 30*time.Second))
	if !s.Known(b, now.Add(SourceTTL+30*time.Second)) {
		t.Fatal("expire dropped a refreshed source")
	}

	// A source the device never answers is forgotten soon.
	d := netip.MustParseAddrPort("127.0.0.1:4")
	s.Learn(d, ka, now)
	s.Expire(now.Add(pendingTTL))
	if _, ok := s.m[d]; ok {
		t.Fatal("an unanswered source outlived pendingTTL")
	}
	s.Purge(nil)
	if len(s.m) != 0 {
		t.Fatal("purge(nil) kept sources")
	}
}

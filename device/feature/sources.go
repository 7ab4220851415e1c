package feature

import (
	"net/netip"
	"sync"
	"time"
)

// Known sources: the UDP addresses the device recently exchanged handshake
// messages with. An initiation from one of them is very likely a peer's
// (its next rekey, its retransmit), so it passes to the device for one map
// look-up; anything else is a new source, which the guard and just-in-time
// provisioning look at more closely.
//
// Only the device's own handshake messages make a source known (the core
// calls Seen from its send hook): a decoded initiation may be a replay or
// a claim of a key its sender cannot prove (upstream rejects either), so
// decoding one only names the owner of a source the device may answer
// next (Learn).

const (
	// MaxSources bounds the set; past it new sources are not remembered.
	MaxSources = 1 << 17
	// SourceTTL keeps a source known for longer than the 3-minute worst
	// case between handshakes of a live session.
	SourceTTL = 5 * time.Minute
	// pendingTTL is how long a decoded source waits for the device's
	// answer.
	pendingTTL = 10 * time.Second
)

// Sources remembers the UDP addresses that recently handshook with the
// device, and for each, the peer it was decoded for (zero when the device
// matched it without wghooks decoding). Its lock is a leaf.
type Sources struct {
	mu sync.Mutex
	m  map[netip.AddrPort]source
}

type source struct {
	owner    Key
	seen     time.Time
	answered bool // the device sent a handshake message to it
}

// NewSources returns an empty set.
func NewSources() *Sources { return &Sources{m: make(map[netip.AddrPort]source)} }

// Known reports whether src is a known source at now.
func (s *Sources) Known(src netip.AddrPort, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[src]
	return ok && e.answered && now.Sub(e.seen) < SourceTTL
}

// Seen records that the device sent a handshake message to src.
func (s *Sources) Seen(src netip.AddrPort, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[src]
	if !ok && len(s.m) >= MaxSources {
		return
	}
	e.seen, e.answered = now, true
	s.m[src] = e
}

// Learn records that src carried an initiation naming owner; src becomes
// known when the device answers it, which only the key's holder gets.
func (s *Sources) Learn(src netip.AddrPort, owner Key, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[src]
	if !ok && len(s.m) >= MaxSources {
		return
	}
	e.owner = owner
	if !e.answered {
		e.seen = now
	}
	s.m[src] = e
}

// Purge forgets the sources of the given owners and every source whose
// owner is not known; nil owners forgets all.
func (s *Sources) Purge(owners []Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if owners == nil {
		clear(s.m)
		return
	}
	set := make(map[Key]struct{}, len(owners))
	for _, k := range owners {
		set[k] = struct{}{}
	}
	for src, e := range s.m {
		if _, ok := set[e.owner]; ok || e.owner == (Key{}) {
			delete(s.m, src)
		}
	}
}

// Expire forgets sources not seen within SourceTTL, and decoded ones the
// device did not answer within pendingTTL.
func (s *Sources) Expire(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for src, e := range s.m {
		if age := now.Sub(e.seen); age >= SourceTTL || !e.answered && age >= pendingTTL {
			delete(s.m, src)
		}
	}
}

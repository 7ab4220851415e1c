package device

import (
	"net/netip"
	"sync"
	"time"
)

// Known sources: the UDP addresses the device recently exchanged handshake
// messages with. An initiation from one of them is very likely a peer's
// (its next rekey, its retransmit), so it passes to the device for one map
// look-up; anything else is a new source, which the guard (guard.go) and
// just-in-time provisioning (provision.go) look at more closely.

const (
	maxSources = 1 << 17
	// sourceTTL keeps a source known for longer than the 3-minute worst
	// case between handshakes of a live session.
	sourceTTL = 5 * time.Minute
)

// sourceSet remembers the UDP addresses that recently handshook with the
// device, and for each, the peer it was decoded for (zero when the device
// matched it without wghooks decoding).
//
// Only the device's own handshake messages make a source known: an
// authenticated initiation may be a replay (upstream rejects its
// timestamp), so decoding one only names the owner of a source the
// device may answer next.
type sourceSet struct {
	mu sync.Mutex
	m  map[netip.AddrPort]source
}

type source struct {
	owner    noiseKey
	seen     time.Time
	answered bool // the device sent a handshake message to it

	// The guard's budget for the source's initiations (admit).
	tokens   float32
	refilled time.Time
}

// A known source's initiations pass the guard for one look-up while it
// has fewer than knownBurst unanswered: each handshake message the device
// sends it gives one back, and knownRate per second come back anyway. A
// genuine peer initiates at most once per RekeyTimeout (5 s) and is
// answered; a relay that carries many peers' handshakes from one address
// is answered too. Only a flood that spoofs a peer's address (junk, which
// nothing answers) runs out, and its excess is then looked at as a new
// source's would be.
const (
	knownBurst = 16
	knownRate  = 1
)

// pendingTTL is how long a decoded source waits for the device's answer.
const pendingTTL = 10 * time.Second

func (s *sourceSet) known(src netip.AddrPort, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[src]
	return ok && e.answered && now.Sub(e.seen) < sourceTTL
}

// admit reports whether an initiation from src passes as a known source's:
// src is known and within its budget, of which it takes one.
func (s *sourceSet) admit(src netip.AddrPort, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[src]
	if !ok || !e.answered || now.Sub(e.seen) >= sourceTTL {
		return false
	}
	// A zero refilled (a fresh source) fills the budget.
	e.tokens = min(knownBurst, e.tokens+float32(now.Sub(e.refilled).Seconds())*knownRate)
	e.refilled = now
	ok = e.tokens >= 1
	if ok {
		e.tokens--
	}
	s.m[src] = e
	return ok
}

// seen records that the device sent a handshake message to src.
func (s *sourceSet) seen(src netip.AddrPort, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[src]
	if !ok && len(s.m) >= maxSources {
		return
	}
	e.seen, e.answered = now, true
	e.tokens = min(knownBurst, e.tokens+1)
	s.m[src] = e
}

// learn records that src carried an authenticated initiation from owner;
// src becomes known when the device answers it.
func (s *sourceSet) learn(src netip.AddrPort, owner noiseKey, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[src]
	if !ok && len(s.m) >= maxSources {
		return
	}
	e.owner = owner
	if !e.answered {
		e.seen = now
	}
	s.m[src] = e
}

// purge forgets the sources of the given owners and every source whose
// owner is not known; nil owners forgets all.
func (s *sourceSet) purge(owners []noiseKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if owners == nil {
		clear(s.m)
		return
	}
	set := make(map[noiseKey]struct{}, len(owners))
	for _, k := range owners {
		set[k] = struct{}{}
	}
	for src, e := range s.m {
		if _, ok := set[e.owner]; ok || e.owner == (noiseKey{}) {
			delete(s.m, src)
		}
	}
}

func (s *sourceSet) expire(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for src, e := range s.m {
		if age := now.Sub(e.seen); age >= sourceTTL || !e.answered && age >= pendingTTL {
			delete(s.m, src)
		}
	}
}

func (s *sourceSet) init() { s.m = make(map[netip.AddrPort]source) }

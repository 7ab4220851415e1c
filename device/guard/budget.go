package guard

import (
	"net/netip"
	"sync"
	"time"

	"wghooks/device/feature"
)

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

// budgets holds each known source's allowance. Its lock is a leaf.
type budgets struct {
	mu sync.Mutex
	m  map[netip.AddrPort]budget
}

type budget struct {
	tokens   float32
	refilled time.Time // zero for a fresh source: the budget is full
}

func (b *budgets) init() { b.m = make(map[netip.AddrPort]budget) }

// take reports whether src, a known source, is within its budget, of
// which it takes one.
func (b *budgets) take(src netip.AddrPort, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[src]
	if !ok {
		if len(b.m) >= feature.MaxSources {
			return false
		}
		e.tokens = knownBurst
	} else {
		e.tokens = min(knownBurst, e.tokens+float32(now.Sub(e.refilled).Seconds())*knownRate)
	}
	e.refilled = now
	ok = e.tokens >= 1
	if ok {
		e.tokens--
	}
	b.m[src] = e
	return ok
}

// refund gives src one initiation back: the device answered it.
func (b *budgets) refund(src netip.AddrPort, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[src]
	if !ok {
		return // a fresh source's budget is full anyway
	}
	e.tokens = min(knownBurst, e.tokens+1)
	b.m[src] = e
}

// expire forgets budgets untouched for as long as a source stays known.
func (b *budgets) expire(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for src, e := range b.m {
		if now.Sub(e.refilled) >= feature.SourceTTL {
			delete(b.m, src)
		}
	}
}

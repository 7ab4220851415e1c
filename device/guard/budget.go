package guard

import (
	"net/netip"
	"sync"
	"time"

	"github.com/wghooks/wghooks/device/feature"
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
	m  map[netip.AddrPort]feature.Bucket
}

func (b *budgets) init() { b.m = make(map[netip.AddrPort]feature.Bucket) }

// take reports whether src, a known source, is within its budget, of
// which it takes one. A source seen for the first time starts full.
func (b *budgets) take(src netip.AddrPort, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[src]
	if !ok {
		if len(b.m) >= feature.MaxSources {
			return false
		}
		e.Fill(knownBurst, now)
	}
	ok = e.Take(now, knownRate, knownBurst)
	b.m[src] = e
	return ok
}

// refund gives src one initiation back: the device answered it.
func (b *budgets) refund(src netip.AddrPort) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.m[src]; ok { // a fresh source's budget is full anyway
		e.Give(knownBurst)
		b.m[src] = e
	}
}

// expire forgets budgets untouched for as long as a source stays known.
func (b *budgets) expire(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for src, e := range b.m {
		if now.Sub(e.Counted()) >= feature.SourceTTL {
			delete(b.m, src)
		}
	}
}

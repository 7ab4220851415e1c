package jit

// The global lookup budget: how many initiations from new sources a
// second may cost a decode and a provider lookup, whatever their source.
// The per-source limiter (admit) bounds one address; anyone who knows the
// device's public key can still send from many addresses, and each
// initiation from a new one is a lookup. Past the budget an initiation
// passes to upstream undecoded, which drops one from an unknown key (its
// client retransmits after 5 s) and answers one from a peer it holds, and
// it is counted (Counters.LookupsRefused).

import (
	"sync"

	"wghooks/internal/mono"
)

// defaultLookupRate is Config.MaxLookupRate's default.
const defaultLookupRate = 200

// lookupBudget is a token bucket: rate tokens a second, at most burst
// saved. Its lock is a leaf, held for a few instructions on the receive
// path. The zero value allows everything.
type lookupBudget struct {
	mu     sync.Mutex
	rate   float64 // tokens a second; 0: no limit
	burst  float64
	tokens float64
	last   int64 // mono.Now of the last refill
}

// init sets the rate (lookups a second, 0 or less: no limit); the burst
// is one second's worth, and the bucket starts full.
func (b *lookupBudget) init(rate int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if rate <= 0 {
		b.rate = 0
		return
	}
	b.rate, b.burst, b.tokens = float64(rate), float64(rate), float64(rate)
	b.last = mono.Now()
}

// allow takes one token at now (a mono.Now reading), and reports whether
// there was one.
func (b *lookupBudget) allow(now int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate == 0 {
		return true
	}
	if now > b.last {
		b.tokens = min(b.burst, b.tokens+float64(now-b.last)*b.rate/1e9)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

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
	"time"

	"github.com/wghooks/wghooks/device/feature"
)

// defaultLookupRate is Config.MaxLookupRate's default.
const defaultLookupRate = 200

// lookupBudget is a token bucket: rate tokens a second, at most a
// second's worth saved. Its lock is a leaf, held for a few instructions on
// the receive path. The zero value allows everything.
type lookupBudget struct {
	mu     sync.Mutex
	rate   float64 // tokens a second; 0: no limit
	bucket feature.Bucket
}

// init sets the rate (lookups a second, 0 or less: no limit); the bucket
// starts full.
func (b *lookupBudget) init(rate int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if rate <= 0 {
		b.rate = 0
		return
	}
	b.rate = float64(rate)
	b.bucket.Fill(b.rate, time.Now())
}

// allow takes one token at now, and reports whether there was one.
func (b *lookupBudget) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rate == 0 || b.bucket.Take(now, b.rate, b.rate)
}

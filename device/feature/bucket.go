package feature

import "time"

// Bucket is a token bucket's state: the tokens saved and when they were
// last counted. Its rate and burst are its owner's, passed to each call,
// so a map of many buckets under one rule holds 32 bytes a bucket. The
// owner locks it. The zero value was last counted long ago: its first
// Take finds it full.
type Bucket struct {
	tokens float64
	last   time.Time
}

// Fill makes b full (burst tokens) as of now.
func (b *Bucket) Fill(burst float64, now time.Time) { b.tokens, b.last = burst, now }

// Take adds what rate a second brought since b was last counted, up to
// burst, then takes one token if there is one.
func (b *Bucket) Take(now time.Time, rate, burst float64) bool {
	if now.After(b.last) {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Give returns one token, up to burst.
func (b *Bucket) Give(burst float64) { b.tokens = min(burst, b.tokens+1) }

// Counted is when b was last refilled or filled.
func (b *Bucket) Counted() time.Time { return b.last }

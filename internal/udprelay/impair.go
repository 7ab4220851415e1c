package udprelay

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Impair makes a relay a poor path, in both directions: each datagram is
// lost with probability Loss, and the others are delayed by Delay plus a
// uniform jitter in [-Jitter, +Jitter] (never below zero), so they may
// arrive out of order. The zero value relays at once.
type Impair struct {
	Loss   float64
	Delay  time.Duration
	Jitter time.Duration
	// Seed seeds the relay's randomness (0: a random seed).
	Seed uint64
}

// impairer applies an Impair; safe for the relay's two goroutines.
type impairer struct {
	mu  sync.Mutex
	cfg Impair
	rng *rand.Rand
	// lost counts datagrams dropped by Loss.
	lost int64
}

// SetImpair changes how the relay impairs the datagrams it relays from
// now on.
func (r *Relay) SetImpair(im Impair) {
	r.imp.mu.Lock()
	defer r.imp.mu.Unlock()
	if r.imp.rng == nil || im.Seed != r.imp.cfg.Seed {
		seed := im.Seed
		if seed == 0 {
			seed = rand.Uint64()
		}
		r.imp.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	}
	r.imp.cfg = im
}

// Lost counts the datagrams the relay dropped as random loss (a cut
// relay's are not counted).
func (r *Relay) Lost() int64 {
	r.imp.mu.Lock()
	defer r.imp.mu.Unlock()
	return r.imp.lost
}

// decide says whether to drop a datagram, and how long to hold it.
func (im *impairer) decide() (drop bool, delay time.Duration) {
	im.mu.Lock()
	defer im.mu.Unlock()
	c := im.cfg
	if im.rng == nil || (c.Loss <= 0 && c.Delay <= 0 && c.Jitter <= 0) {
		return false, 0
	}
	if c.Loss > 0 && im.rng.Float64() < c.Loss {
		im.lost++
		return true, 0
	}
	delay = c.Delay
	if c.Jitter > 0 {
		delay += time.Duration(im.rng.Int64N(int64(2*c.Jitter)+1)) - c.Jitter
	}
	return false, max(delay, 0)
}

// forward sends b (copied when held) through send, now or after the
// impairment's delay; held datagrams are counted in r.wg so Close waits
// for them.
func (r *Relay) forward(b []byte, send func([]byte)) {
	drop, delay := r.imp.decide()
	if drop {
		return
	}
	if delay <= 0 {
		send(b)
		return
	}
	held := append([]byte(nil), b...)
	r.wg.Add(1)
	time.AfterFunc(delay, func() {
		defer r.wg.Done()
		if r.alive.Load() {
			send(held) // fails quietly once the relay is closed
		}
	})
}

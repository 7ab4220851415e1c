package guard

import (
	"sync"
	"time"
)

// replayCache remembers the mac1 of the initiations the guard recently
// let through. An initiation that carries one of them again is a copy: a
// replay, or the network's duplicate. Upstream would reject it for its
// timestamp only after two X25519; the guard drops it for one look-up,
// before it costs a known source's budget or a new-source token, so a
// replay flood takes nothing from the peers whose packets it copies.
//
// It keeps two generations of at most replayGeneration entries each and
// starts a new one every replayWindow (or when the current is full), so a
// copy is caught for at least one window under normal rates and memory
// stays bounded under any. Only passed initiations enter it, and those
// are themselves rate-bounded.
type replayCache struct {
	mu        sync.Mutex
	cur, prev map[[16]byte]struct{}
	started   time.Time // of cur
}

const (
	replayWindow     = 10 * time.Second
	replayGeneration = 1 << 13
)

// has reports whether mac1 belongs to an initiation passed recently.
func (c *replayCache) has(mac1 [16]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, inCur := c.cur[mac1]
	_, inPrev := c.prev[mac1]
	return inCur || inPrev
}

// add records that the initiation with mac1 was let through at now.
func (c *replayCache) add(mac1 [16]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || len(c.cur) >= replayGeneration || now.Sub(c.started) >= replayWindow {
		c.prev, c.cur, c.started = c.cur, make(map[[16]byte]struct{}), now
	}
	c.cur[mac1] = struct{}{}
}

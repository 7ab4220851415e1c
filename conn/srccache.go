package conn

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wghooks/wghooks/internal/mono"
)

// SourceResetter is implemented by binds that cache, per endpoint, the
// local address to send from (StickyBind). The device finds it by
// unwrapping its Bind.
type SourceResetter interface {
	// ResetSource makes datagrams to remote leave from the address the
	// routing table picks, ignoring sources learned before the call and
	// during the grace period after it (datagrams still in flight to the
	// old address must not make it sticky again).
	ResetSource(remote netip.AddrPort)
	// ResetAllSources does ResetSource for every remote.
	ResetAllSources()
	// RoutesChanged is called after a route, address or link change: it
	// resets the remotes we initiated sessions with (the ones whose
	// source should follow the routing table), and keeps replying from
	// the contacted address to peers that initiated to us. It returns how
	// many remotes it reset.
	RoutesChanged() int
}

// DefaultSourceGrace is how long after a reset sources learned from
// arriving datagrams are ignored.
const DefaultSourceGrace = 2 * time.Second

// maxSourceRemotes bounds the per-remote tables; past it a per-remote
// reset becomes a reset of all.
const maxSourceRemotes = 1 << 16

// sourceCache decides whether the source an endpoint learned may be used.
// Endpoints carry the time they were born (received); a reset at time T
// makes every endpoint of the remote born before T+grace unusable, so the
// next datagram goes out by the routing table until a datagram that
// arrived after the grace period teaches a source again.
type sourceCache struct {
	grace int64
	allAt atomic.Int64 // last reset of all remotes, 0 for none
	n     atomic.Int32 // len(resetAt), read without the lock

	mu      sync.RWMutex
	resetAt map[netip.AddrPort]int64
	roles   map[netip.AddrPort]bool // true: we initiated to this remote
}

func newSourceCache(grace time.Duration) *sourceCache {
	if grace <= 0 {
		grace = DefaultSourceGrace
	}
	return &sourceCache{
		grace:   int64(grace),
		resetAt: map[netip.AddrPort]int64{},
		roles:   map[netip.AddrPort]bool{},
	}
}

// usable reports whether a source learned at born for remote may be used.
func (c *sourceCache) usable(born int64, remote netip.AddrPort) bool {
	if a := c.allAt.Load(); a != 0 && born < a+c.grace {
		return false
	}
	if c.n.Load() == 0 {
		return true
	}
	c.mu.RLock()
	t, ok := c.resetAt[remote]
	c.mu.RUnlock()
	return !ok || born >= t+c.grace
}

func (c *sourceCache) ResetSource(remote netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.resetAt) >= maxSourceRemotes {
		c.resetAllLocked()
		return
	}
	c.resetAt[remote] = mono.Now()
	c.n.Store(int32(len(c.resetAt)))
}

func (c *sourceCache) ResetAllSources() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetAllLocked()
}

func (c *sourceCache) resetAllLocked() {
	c.allAt.Store(mono.Now())
	clear(c.resetAt)
	c.n.Store(0)
}

// noteRole records who initiated with remote, from the handshake message
// type we send to it (1: we initiate, 2: we respond).
func (c *sourceCache) noteRole(remote netip.AddrPort, initiator bool) {
	c.mu.RLock()
	cur, ok := c.roles[remote]
	c.mu.RUnlock()
	if ok && cur == initiator {
		return
	}
	c.mu.Lock()
	if len(c.roles) >= maxSourceRemotes {
		clear(c.roles)
	}
	c.roles[remote] = initiator
	c.mu.Unlock()
}

func (c *sourceCache) RoutesChanged() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := mono.Now()
	n := 0
	for remote, initiator := range c.roles {
		if !initiator {
			continue
		}
		if len(c.resetAt) >= maxSourceRemotes {
			c.resetAllLocked()
			return len(c.roles)
		}
		c.resetAt[remote] = now
		n++
	}
	c.n.Store(int32(len(c.resetAt)))
	return n
}

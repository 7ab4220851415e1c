package jit

// Configuration of just-in-time peers and its defaults.

import (
	"time"

	"github.com/wghooks/wghooks/hooks"
)

// Config configures just-in-time peers (peer-miss provisioning,
// eviction, revalidation). The zero value turns the feature off.
type Config struct {
	// Provider says which peer a public key belongs to. Default (nil): no
	// just-in-time peers; an initiation from an unknown key is dropped as
	// upstream drops it, and nothing of this feature runs.
	Provider hooks.Provider

	// LookupTimeout bounds one provider lookup. Default 3 s.
	LookupTimeout time.Duration

	// NegativeTTL is how long a key the provider called unknown is refused
	// without asking again. Default 1 min.
	NegativeTTL time.Duration

	// ErrorRetry is how long after a failed lookup (error, timeout,
	// invalid answer) the same key is asked again. Default 2 s.
	ErrorRetry time.Duration

	// HoldTimeout is how long a held initiation stays worth answering;
	// older ones are dropped (their initiator has moved on to a newer one,
	// it retransmits after 5 s). Default 4 s.
	HoldTimeout time.Duration

	// IdleTimeout evicts a just-in-time peer that has had no handshake and
	// no traffic for this long. WireGuard repeats the handshake at least
	// every 3 minutes while any traffic flows, so anything above that
	// never cuts a live session. Default 10 min; negative never evicts.
	IdleTimeout time.Duration

	// MaxPeers caps installed just-in-time peers; installing one more
	// first evicts the least recently active. Static peers do not count.
	// Default 16384.
	MaxPeers int

	// RevalidateInterval re-asks the provider about every installed
	// just-in-time peer at this interval: a key now unknown is removed
	// (revocation), a changed configuration is applied, and a failed
	// lookup keeps the peer (an outage cuts no one off), and so does a
	// changed answer refused by the rules of a first install (one taking a
	// static peer's allowed IPs). Default 5 min;
	// negative never revalidates.
	RevalidateInterval time.Duration

	// MaxLookups bounds concurrent provider calls (a batch lookup counts
	// as one); a lookup beyond it waits for one to end, an outbound one
	// is dropped. Default 64.
	MaxLookups int

	// MaxLookupRate bounds, over all sources together, the initiations
	// from new sources decoded (and so looked up) each second, with a
	// burst of one second's worth (budget.go); per source they are
	// limited as well. An initiation beyond it passes to upstream
	// undecoded (an unknown key's is dropped there, and its client
	// retransmits) and counts in Counters.LookupsRefused. Default 200;
	// negative: no limit.
	MaxLookupRate int

	// RestoreDeadline bounds how long a restarted device spends
	// reinstalling the just-in-time peers its state file lists
	// (restore.go); the ones not reached by then come back when their
	// clients knock, as their own timers make them within about two
	// minutes. Default 2 min.
	RestoreDeadline time.Duration

	// OnPeerEvent is notified of installs, refusals, failures, evictions,
	// revocations and updates. Default: nothing.
	OnPeerEvent hooks.OnPeerEvent

	// Outbound turns on the outbound side: a packet from the TUN to an
	// address no installed peer covers asks the provider which peer holds
	// it and installs that peer, so the gateway can reach a client first
	// (outbound.go). The provider must implement hooks.AddrProvider.
	// Default false: such packets are dropped, as upstream drops them.
	Outbound bool
}

const (
	decodeQueueLen = 1024
	maxHeld        = 4096
	maxWatched     = 1024
	maxNegative    = 1 << 16
	// watchAfter is how long the device gets to answer an initiation
	// from a known source before wghooks decodes it itself.
	watchAfter = 300 * time.Millisecond
	// removedMemory is how long a removal cancels a lookup that was
	// already under way for the same key.
	removedMemory = time.Minute
)

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.LookupTimeout, 3*time.Second)
	def(&c.NegativeTTL, time.Minute)
	def(&c.ErrorRetry, 2*time.Second)
	def(&c.HoldTimeout, 4*time.Second)
	def(&c.IdleTimeout, 10*time.Minute)
	def(&c.RevalidateInterval, 5*time.Minute)
	def(&c.RestoreDeadline, 2*time.Minute)
	if c.MaxPeers <= 0 {
		c.MaxPeers = 16384
	}
	if c.MaxLookups <= 0 {
		c.MaxLookups = 64
	}
	if c.MaxLookupRate == 0 {
		c.MaxLookupRate = defaultLookupRate
	}
	return c
}

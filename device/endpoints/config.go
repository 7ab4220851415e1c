package endpoints

// The settings and their defaults.

import (
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/dnsresolver"
)

// Config configures endpoints that heal. The zero value works.
type Config struct {
	// Resolver resolves hostname endpoints. Default: dnsresolver.Resolver,
	// a DNS client over the name servers of /etc/resolv.conf that reports
	// TTLs, falling back to the system resolver.
	Resolver hooks.Resolver

	// Hosts are hostname endpoints ("host:port") of peers by public key,
	// applied when the peer is configured (now or later). Default: none.
	Hosts map[feature.Key]string

	// MinTTL is the floor of the re-resolution interval, whatever the TTL.
	// Default 10 s.
	MinTTL time.Duration

	// MaxTTL is the ceiling of the re-resolution interval: a name is asked
	// again at least this often, whatever its TTL. Default 5 min.
	MaxTTL time.Duration

	// UnknownTTL is used when the resolver reports no TTL (then clamped to
	// [MinTTL, MaxTTL]). Default 1 min.
	UnknownTTL time.Duration

	// ResolveTimeout bounds one resolution. Default 5 s.
	ResolveTimeout time.Duration

	// Stagger is the delay between copies to successive candidates (RFC
	// 8305's "connection attempt delay"); it grows to twice the measured
	// handshake round trip when that is longer, up to 2 s. Default 250 ms.
	Stagger time.Duration

	// ReplyTimeout caps how long data may go out to a hostname peer with
	// nothing coming back before it is probed: the measured round-trip
	// timeout (feature.RTT) is used when shorter. Default 1 s.
	ReplyTimeout time.Duration

	// ProbeInterval is how long a hostname peer that only receives, or
	// only sends keepalives, may hear nothing before it is probed with a
	// handshake: at most one extra handshake per interval, only while
	// the peer is in use. Negative: never. Default 15 s.
	ProbeInterval time.Duration

	// FailbackInterval is how often a peer that left IPv6 tries it again.
	// It doubles each time the peer has to leave IPv6 again, up to 10 min,
	// and returns to this value after 10 min on IPv6. Default 30 s.
	FailbackInterval time.Duration

	// NoRouteWatch stops watching route and address changes (Linux
	// netlink), which otherwise reset cached source addresses. Default:
	// watching.
	NoRouteWatch bool
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MinTTL, defaultMinTTL)
	def(&c.MaxTTL, defaultMaxTTL)
	if c.MaxTTL < c.MinTTL {
		c.MaxTTL = c.MinTTL
	}
	def(&c.UnknownTTL, defaultUnknownTTL)
	def(&c.ResolveTimeout, defaultResolveTimeout)
	def(&c.Stagger, defaultStagger)
	def(&c.ReplyTimeout, defaultReplyTimeout)
	def(&c.FailbackInterval, defaultFailbackInterval)
	if c.ProbeInterval == 0 {
		c.ProbeInterval = defaultProbeInterval
	}
	if c.Resolver == nil {
		c.Resolver = &dnsresolver.Resolver{}
	}
	return c
}

package flowescape

// The settings and the constants flow escape runs on.

import (
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"
)

// Config configures behaviour behind UDP load balancers.
type Config struct {
	// FlowEscapeOff turns flow escape off. Default: on while the listen
	// port is random (no listen_port, or listen_port=0); configuring a
	// fixed listen_port, or a JIT provider (a gateway), turns it off by
	// itself.
	FlowEscapeOff bool

	// Silence caps how long data sent to an endpoint may go without
	// anything coming back before wghooks probes it with a handshake: the
	// measured round-trip timeout (feature.RTT) is used when shorter.
	// Default 1 s.
	Silence time.Duration

	// HandshakeTimeout caps how long a handshake initiation may go
	// unanswered before it counts as lost: twice the measured round-trip
	// timeout is used when shorter. Default 1 s.
	HandshakeTimeout time.Duration

	// ProbeInterval is how long an endpoint in use that only receives,
	// or only sends keepalives, may hear nothing before it is probed with
	// a handshake: at most one extra handshake per interval. Negative:
	// never. Default 15 s.
	ProbeInterval time.Duration

	// MaxBackoff caps the wait between two escapes from an endpoint that
	// stays silent: the wait is one handshake timeout for the first six
	// escapes, 5 s until the first escape is 90 s old, then MaxBackoff.
	// Default 1 min.
	MaxBackoff time.Duration
}

const (
	defaultFlowSilence   = time.Second
	defaultFlowHandshake = time.Second
	defaultFlowBackoff   = time.Minute
	defaultProbeInterval = 15 * time.Second

	// quickEscapes is how many escapes after the first of a silent spell
	// wait only for the new flow's initiation to be lost: each is one more
	// coin toss behind a balancer with a dead backend.
	quickEscapes = 5
	// steadyBackoff is the wait between escapes after those, until the
	// spell is steadyFor old: upstream's own handshake retry pace, for as
	// long as upstream retries a handshake. Past that, a balancer with one
	// dead backend of two would have let through one of 23 new flows
	// (2^-23 that none did): the endpoint is down, and MaxBackoff applies.
	steadyBackoff = wgdevice.RekeyTimeout
	steadyFor     = wgdevice.RekeyAttemptTime
	// nudgeEvery bounds the initiations an escape sends to other peers:
	// upstream swallows one sent within RekeyTimeout of the last anyway.
	nudgeEvery = wgdevice.RekeyTimeout
	// othersInUse is how recently another endpoint must have been active
	// for an escape to nudge its peers.
	othersInUse = 2 * time.Minute

	// flowTick is the sampling period while an endpoint is busy: a fifth
	// of the shortest wait (feature.MinRTO).
	flowTick = 20 * time.Millisecond
	// busyFor keeps the watcher sampling this long after the last event.
	busyFor = time.Second

	// maxFlows bounds the endpoints tracked at once.
	maxFlows = 4096
	// flowForget drops an endpoint's state after this long unused.
	flowForget = 5 * time.Minute
)

func (c Config) withDefaults() Config {
	if c.Silence <= 0 {
		c.Silence = defaultFlowSilence
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = defaultFlowHandshake
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = defaultFlowBackoff
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = defaultProbeInterval
	}
	return c
}

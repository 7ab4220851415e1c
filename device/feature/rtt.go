package feature

import (
	"sync/atomic"
	"time"
)

// Silence measured, not assumed. RTT estimates one path's round trip and
// its variation as TCP does (RFC 6298), and Path says when that path's
// silence is worth a probe and when it is dead. Endpoint failover and flow
// escape both read them; each keeps its own per path.
//
// The rule, in round-trip units:
//
//  1. RTO = SRTT + 4·RTTVAR, at least MinRTO and at most MaxRTO; 1 s
//     before the first sample.
//  2. Doubt: two sends unanswered, the first for an RTO and the second
//     for SRTT + 2·RTTVAR (at least MinRTO/2). One lost packet is never
//     doubt: the next send's answer clears it.
//  3. Doubt asks for a probe, a handshake initiation: WireGuard's only
//     message that is always answered. The path is dead when nothing at
//     all (probe answer or data) comes back for 2·RTO after the probe
//     left (the probe is a retransmission: its timer backs off, as
//     Karn's algorithm says).
//
// So a failover takes at least three unanswered datagrams (two sends and
// the probe) and 3·MinRTO = 300 ms of silence. The floor: MinRTO is
// 100 ms, above the scheduling noise of a loaded host and Linux's 40 ms
// delayed ACK, so a path whose round trip is far below it (loopback, a
// LAN) still needs three unanswered datagrams over 300 ms; on a lossy
// path it is the packet count that keeps loss from being death.
//
// Samples (Karn's rule: none that could belong to two sends):
//   - data: the first send after the last receipt, to the next receipt.
//     No sample from a silence that asked for a probe or sent copies
//     elsewhere (the answer may be to either).
//   - handshake: an initiation to its response, unless the initiation was
//     copied elsewhere or another one was outstanding.

const (
	// MinRTO is the floor of the retransmission timeout.
	MinRTO = 100 * time.Millisecond
	// MaxRTO is its ceiling, and the timeout before any sample.
	MaxRTO = 60 * time.Second
	// InitialRTO is the timeout before the first sample (RFC 6298).
	InitialRTO = time.Second
)

// RTT is a round-trip estimator (RFC 6298: gains 1/8 and 1/4). Lock-free:
// samples come from packet goroutines. The zero value has no sample.
type RTT struct {
	// v packs SRTT (high 32 bits) and RTTVAR (low 32 bits) in
	// microseconds; 0 means no sample yet.
	v atomic.Uint64
}

const usec = uint64(time.Microsecond)

// Sample adds one round-trip measurement.
func (r *RTT) Sample(d time.Duration) {
	if d <= 0 {
		d = time.Microsecond
	}
	m := min(uint64(d)/usec, 1<<31)
	if m == 0 {
		m = 1
	}
	for {
		old := r.v.Load()
		var s, v uint64
		if old == 0 {
			s, v = m, m/2
		} else {
			s0, v0 := old>>32, old&0xffffffff
			diff := s0 - m
			if m > s0 {
				diff = m - s0
			}
			v = (3*v0 + diff) / 4
			s = (7*s0 + m) / 8
		}
		s = max(s, 1)
		if r.v.CompareAndSwap(old, s<<32|v) {
			return
		}
	}
}

// Get returns the smoothed round trip and its variation; ok is false
// before the first sample.
func (r *RTT) Get() (srtt, rttvar time.Duration, ok bool) {
	x := r.v.Load()
	if x == 0 {
		return 0, 0, false
	}
	return time.Duration(x>>32) * time.Microsecond, time.Duration(x&0xffffffff) * time.Microsecond, true
}

// RTO is SRTT + 4·RTTVAR within [MinRTO, MaxRTO]; InitialRTO before any
// sample.
func (r *RTT) RTO() time.Duration {
	s, v, ok := r.Get()
	if !ok {
		return InitialRTO
	}
	return min(max(s+4*v, MinRTO), MaxRTO)
}

// answerTime is how long one send may take to be answered before it
// counts as unanswered: SRTT + 2·RTTVAR, at least MinRTO/2.
func (r *RTT) answerTime() time.Duration {
	s, v, ok := r.Get()
	if !ok {
		return InitialRTO / 2
	}
	return min(max(s+2*v, MinRTO/2), MaxRTO)
}

// Path is the liveness of one path (a peer's endpoint): what was sent and
// heard, on the packet goroutines, and the verdict, on the owner's timer.
// Times are internal/mono readings (0: none). The zero value is a path
// with nothing sent.
type Path struct {
	RTT RTT

	rx      atomic.Int64 // last receipt
	first   atomic.Int64 // first send after the last receipt
	second  atomic.Int64 // a later send, at least minSendGap after first
	probe   atomic.Int64 // probe sent in this silence
	tainted atomic.Bool  // this silence asked for a probe or sent copies: no data sample
}

// minSendGap keeps the sends of one burst from counting as two.
const minSendGap = int64(5 * time.Millisecond)

// Sent notes data sent at now (mono).
func (p *Path) Sent(now int64) {
	f := p.first.Load()
	if f == 0 {
		if p.first.CompareAndSwap(0, now) {
			return
		}
		f = p.first.Load()
	}
	if f != 0 && now-f >= minSendGap && p.second.Load() == 0 {
		p.second.CompareAndSwap(0, now)
	}
}

// Heard notes a datagram received from the path at now (mono), and takes
// a data sample from it when the silence it ends is unambiguous.
func (p *Path) Heard(now int64) {
	p.rx.Store(now)
	if p.first.Load() == 0 && p.probe.Load() == 0 {
		return // nothing outstanding: the common case of a busy path
	}
	f := p.first.Swap(0)
	p.second.Store(0)
	p.probe.Store(0)
	if p.tainted.Swap(false) {
		return
	}
	if f != 0 && now > f {
		p.RTT.Sample(time.Duration(now - f))
	}
}

// Taint marks the current silence ambiguous (copies were sent elsewhere):
// its end gives no data sample.
func (p *Path) Taint() { p.tainted.Store(true) }

// Probed notes that a probe (a handshake initiation) left at now.
func (p *Path) Probed(now int64) {
	p.tainted.Store(true)
	p.probe.CompareAndSwap(0, now)
}

// Outstanding reports whether a send or a probe waits for an answer: a
// receive hook calls Heard (and reads the clock) only then.
func (p *Path) Outstanding() bool { return p.first.Load() != 0 || p.probe.Load() != 0 }

// Probing reports whether a probe of this silence is outstanding.
func (p *Path) Probing() bool { return p.probe.Load() != 0 }

// LastHeard is the mono time of the last receipt (0: never).
func (p *Path) LastHeard() int64 { return p.rx.Load() }

// Verdict is what a path's silence calls for.
type Verdict int

const (
	// Alive: nothing unanswered for long.
	Alive Verdict = iota
	// Doubt: two sends unanswered for a round trip; probe, if not yet.
	Doubt
	// Dead: the probe and everything else unanswered for 2·RTO.
	Dead
)

// Check judges the path at now (mono). silenceCap, when positive, caps
// the RTO a silence must last before doubt; probeCap caps the wait for the
// probe's answer.
func (p *Path) Check(now int64, silenceCap, probeCap time.Duration) Verdict {
	if pr := p.probe.Load(); pr != 0 {
		wait := 2 * p.RTT.RTO()
		if probeCap > 0 {
			wait = min(wait, probeCap)
		}
		if time.Duration(now-pr) >= wait {
			return Dead
		}
		return Doubt
	}
	f, s := p.first.Load(), p.second.Load()
	if f == 0 || s == 0 {
		return Alive
	}
	rto, ans := p.RTT.RTO(), p.RTT.answerTime()
	if silenceCap > 0 {
		rto, ans = min(rto, silenceCap), min(ans, silenceCap)
	}
	if time.Duration(now-f) >= rto && time.Duration(now-s) >= ans {
		return Doubt
	}
	return Alive
}

// SilentFor is how long the oldest unanswered send has waited at now
// (0: none), for logs.
func (p *Path) SilentFor(now int64) time.Duration {
	if f := p.first.Load(); f != 0 {
		return time.Duration(now - f)
	}
	return 0
}

// Reset forgets what is outstanding (a new flow, a new session).
func (p *Path) Reset() {
	p.first.Store(0)
	p.second.Store(0)
	p.probe.Store(0)
	p.tainted.Store(false)
}

// OneWay is how long a path shown one-way (a probe answered while its
// data was not: a peer that never answers that traffic) waits in silence
// before the next probe: none at first, then 1 s doubling up to 16 s
// (past upstream's 10 s passive keepalive, which a live peer sends back to
// a one-way flow), halving every 2 minutes. Its owner's goroutine only.
type OneWay struct {
	d  time.Duration
	at time.Time // when d last changed
}

const (
	minOneWay   = time.Second
	maxOneWay   = 16 * time.Second
	oneWayDecay = 2 * time.Minute
)

// Grow notes that a probe proved the path one-way at now.
func (o *OneWay) Grow(now time.Time) {
	o.d = min(max(2*o.d, minOneWay), maxOneWay)
	o.at = now
}

// Wait is the silence to wait for at now (0: none), after the decay.
func (o *OneWay) Wait(now time.Time) time.Duration {
	if o.d > 0 && now.Sub(o.at) >= oneWayDecay {
		o.d /= 2
		if o.d < minOneWay {
			o.d = 0
		}
		o.at = now
	}
	return o.d
}

package feature

import (
	"sync/atomic"
	"time"

	"github.com/wghooks/wghooks/internal/mono"
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
//   - data: the first send after the last receipt, to the next receipt,
//     at most one every 20 ms (each costs two clock reads). No sample
//     from a silence that asked for a probe or sent copies elsewhere (the
//     answer may be to either).
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

// Path is the liveness of one path (a peer's endpoint). The packet
// goroutines only count what they send and note that they heard (Sent,
// Heard: a few atomic loads, no clock read but for an occasional timed
// send); the owner's timer (every 20 ms) reads those counts in Update,
// stamps the silence with its own clock, and judges it in Check. So the
// first unanswered send is dated to the tick that saw it (20 ms late at
// most), and sends within one tick are one send. Times are internal/mono
// readings (0: none). The zero value is a path with nothing sent.
type Path struct {
	RTT RTT

	// Packet side.
	tx      atomic.Uint64 // send batches so far
	rx      atomic.Uint64 // tx when last heard
	heard   atomic.Bool   // heard since the owner's last Update
	timedAt atomic.Int64  // the timed send (first after a receipt); 0: none
	want    atomic.Bool   // the owner wants a sample: time the next send
	tainted atomic.Bool   // this silence asked for a probe or sent copies: no sample

	// Owner side: Update, Check, Probed, Reset and the readers below run
	// on one goroutine (the feature's timer) at a time.
	first   int64  // when the owner saw sends unanswered
	firstTx uint64 // tx then
	second  int64  // when it saw a later send still unanswered
	probe   int64  // probe sent in this silence
	wantAt  int64  // when a sample was last asked for
}

// sampleEvery is the least time between two data samples: each costs two
// clock reads on the packet path.
const sampleEvery = int64(20 * time.Millisecond)

// Sent notes a batch of data sent (not keepalives: nothing answers them).
func (p *Path) Sent() {
	n := p.tx.Add(1)
	if p.want.Load() && p.rx.Load() == n-1 && p.timedAt.Load() == 0 {
		// The first send after a receipt: time it to the next receipt.
		if p.timedAt.CompareAndSwap(0, mono.Now()) {
			p.want.Store(false)
		}
	}
}

// Heard notes a datagram received from the path, and takes the timed
// send's sample when the silence it ends is unambiguous.
func (p *Path) Heard() {
	if !p.heard.Load() {
		p.heard.Store(true)
	}
	if tx := p.tx.Load(); p.rx.Load() != tx {
		p.rx.Store(tx)
	}
	if t := p.timedAt.Load(); t != 0 && p.timedAt.CompareAndSwap(t, 0) && !p.tainted.Load() {
		p.RTT.Sample(time.Duration(mono.Now() - t))
	}
}

// Taint marks the current silence ambiguous (copies were sent elsewhere):
// its end gives no sample.
func (p *Path) Taint() { p.tainted.Store(true) }

// Update reads what the packet goroutines counted since the last call;
// the owner's timer calls it before Check. heard reports whether anything
// was heard since the last call, so the owner needs no flag of its own.
func (p *Path) Update(now int64) (heard bool) {
	if p.heard.Load() && p.heard.Swap(false) {
		heard = true
		p.first, p.second, p.probe = 0, 0, 0
		if p.tainted.Load() {
			p.tainted.Store(false)
		}
	}
	tx, rx := p.tx.Load(), p.rx.Load()
	switch {
	case tx == rx:
	case p.first == 0:
		p.first, p.firstTx = now, tx
	case p.second == 0 && tx != p.firstTx:
		p.second = now
	}
	if !p.want.Load() && now-p.wantAt >= sampleEvery {
		p.wantAt = now
		p.want.Store(true)
	}
	return heard
}

// Probed notes that a probe (a handshake initiation) left at now.
func (p *Path) Probed(now int64) {
	p.tainted.Store(true)
	if p.probe == 0 {
		p.probe = now
	}
}

// Probing reports whether a probe of this silence is outstanding.
func (p *Path) Probing() bool { return p.probe != 0 }

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

// Check judges the path at now (mono), as of the last Update. silenceCap,
// when positive, caps the RTO a silence must last before doubt; probeCap
// caps the wait for the probe's answer.
func (p *Path) Check(now int64, silenceCap, probeCap time.Duration) Verdict {
	if p.probe != 0 {
		wait := 2 * p.RTT.RTO()
		if probeCap > 0 {
			wait = min(wait, probeCap)
		}
		if time.Duration(now-p.probe) >= wait {
			return Dead
		}
		return Doubt
	}
	if p.first == 0 || p.second == 0 {
		return Alive
	}
	rto, ans := p.RTT.RTO(), p.RTT.answerTime()
	if silenceCap > 0 {
		rto, ans = min(rto, silenceCap), min(ans, silenceCap)
	}
	if time.Duration(now-p.first) >= rto && time.Duration(now-p.second) >= ans {
		return Doubt
	}
	return Alive
}

// SilentFor is how long the oldest unanswered send has waited at now
// (0: none), for logs.
func (p *Path) SilentFor(now int64) time.Duration {
	if p.first != 0 {
		return time.Duration(now - p.first)
	}
	return 0
}

// Reset forgets what is outstanding (a new flow, a new session).
func (p *Path) Reset() {
	p.rx.Store(p.tx.Load())
	p.heard.Store(false)
	p.timedAt.Store(0)
	p.tainted.Store(false)
	p.first, p.second, p.probe = 0, 0, 0
}

// Lossy remembers a path's last false doubt (a probed silence that ended
// without a failover): for 2 minutes after it the path is lossy, and its
// probes never expire keypairs, whose stalled data would make a lost
// probe look like death. Its owner's goroutine only.
type Lossy struct{ at time.Time }

const lossyFor = 2 * time.Minute

// FalseDoubt notes at now that a doubt proved false.
func (l *Lossy) FalseDoubt(now time.Time) { l.at = now }

// Is reports whether the path is lossy at now.
func (l *Lossy) Is(now time.Time) bool { return !l.at.IsZero() && now.Sub(l.at) < lossyFor }

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

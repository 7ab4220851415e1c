package flowescape

// flowWatch: one endpoint's decisions from its samples, pure (no I/O,
// no clock of its own), so tests drive it step by step.

import (
	"fmt"
	"strings"
	"time"

	"github.com/wghooks/wghooks/device/feature"
)

// flowCounts is one sample of an endpoint's stamps: for each kind of
// event, the sequence number of the latest one (0: none yet); the path's
// verdict on its data; and whether anything was heard, data heard, or
// anything sent (keepalives too) since the last sample.
type flowCounts struct {
	data, init, recv, resp uint64
	doubt                  bool
	heard, heardData, sent bool
}

// flowTimes are the watcher's thresholds: the wait for an initiation's
// answer (3·RTO, capped), the cap on the wait between escapes, and the
// quiet probe's interval (<= 0: none).
type flowTimes struct{ handshake, maxBackoff, probeEvery time.Duration }

type flowAction int

const (
	flowNone flowAction = iota
	flowProbe
	flowForceProbe
	flowEscapeNow
	flowRecovered
)

// flowWatch is the decision state for one endpoint. step is pure: it
// reads a sample and the time and says what to do.
type flowWatch struct {
	seen        flowCounts
	lastActive  time.Time      // last step that saw any counter move
	lastHeard   time.Time      // last step that saw anything heard
	lastDataRx  time.Time      // last step that saw data heard
	lastSent    time.Time      // last step that saw anything sent
	lastProbe   time.Time      // the last probe asked for
	lossy       feature.Lossy  // the last probe whose silence ended: a live, lossy path
	waiting     bool           // data sent, nothing heard since
	waitingSent time.Time      // when the first such send was seen
	initAt      time.Time      // the newest unanswered initiation; zero: none pending
	unanswered  int            // initiations lost since last heard
	probing     bool           // silence asked for a probe this episode
	quietProbe  bool           // the probe is for quiet, not for unanswered data
	probeAsks   int            // probes asked for with no initiation seen yet
	probeLogged bool           // the shell logged this episode's probe
	oneWay      feature.OneWay // least silence before a probe, once shown one-way
	escapes     int            // escapes since last heard
	escapedAt   time.Time
	firstEscape time.Time
	reason      string // why the last escape happened, for the log
}

// busy reports whether the endpoint needs sampling: traffic within the
// last second, or something unresolved.
func (w *flowWatch) busy(now time.Time, t flowTimes) bool {
	return w.waiting || !w.initAt.IsZero() || w.unanswered > 0 || w.escapes > 0 || w.probing ||
		now.Sub(w.lastActive) <= busyFor
}

// inUse reports whether the endpoint is in use for the quiet probe:
// anything sent within the probe interval, or data heard within two.
func (w *flowWatch) inUse(now time.Time, t flowTimes) bool {
	if t.probeEvery <= 0 {
		return false
	}
	return (!w.lastSent.IsZero() && now.Sub(w.lastSent) < t.probeEvery) ||
		(!w.lastDataRx.IsZero() && now.Sub(w.lastDataRx) < 2*t.probeEvery)
}

// silentSince is when the silence being probed began, for the log.
func (w *flowWatch) silentSince() time.Time {
	if w.quietProbe {
		return w.lastHeard
	}
	return w.waitingSent
}

// step takes one sample. Strikes (data in doubt; each initiation
// unanswered for the handshake wait) add up; two escape, as does one lost
// initiation after an escape, or a quiet probe lost.
func (w *flowWatch) step(now time.Time, c flowCounts, t flowTimes) flowAction {
	heard := c.recv != w.seen.recv
	answered := c.resp != w.seen.resp
	sentData := c.data != w.seen.data
	sentInit := c.init != w.seen.init
	w.seen = c
	if heard || sentData || sentInit {
		w.lastActive = now
	}
	if w.lastHeard.IsZero() || c.heard || heard {
		w.lastHeard = now // an endpoint is first seen alive
	}
	if c.heardData {
		w.lastDataRx = now
	}
	if c.sent || sentData || sentInit {
		w.lastSent = now
	}
	oneWay := w.oneWay.Wait(now)

	action := flowNone
	if heard {
		if w.escapes > 0 {
			action = flowRecovered
		} else if w.probing && !w.quietProbe {
			w.lossy.FalseDoubt(now) // a doubt that was false: a lossy path
			if answered && w.waiting {
				// The probe was answered, the data still is not: one-way.
				w.oneWay.Grow(now)
			}
		}
		w.waiting, w.initAt, w.unanswered = false, time.Time{}, 0
		w.probing, w.quietProbe, w.probeAsks, w.probeLogged, w.escapes = false, false, 0, false, 0
	}
	// What was sent after the last answer is waiting for one.
	if c.data > c.recv && (sentData || heard) && !w.waiting {
		w.waiting, w.waitingSent = true, now
	}
	if c.init > c.recv && (sentInit || heard) && w.initAt.IsZero() {
		w.initAt = now
		w.probeAsks = 0
	}
	if heard {
		return action
	}
	if !w.initAt.IsZero() && now.Sub(w.initAt) >= t.handshake {
		w.unanswered++
		w.initAt = time.Time{}
	}
	silent := w.waiting && c.doubt && (oneWay == 0 || now.Sub(w.waitingSent) >= oneWay)

	strikes := w.unanswered
	if silent || (w.quietProbe && w.unanswered > 0) {
		strikes++
	}
	if strikes >= 2 || (w.escapes > 0 && w.unanswered > 0) {
		if w.escapes > 0 && now.Sub(w.escapedAt) < w.backoff(now, t) {
			return flowNone
		}
		w.reason = w.describe(now, silent, t)
		if w.escapes == 0 {
			w.firstEscape = now
		}
		w.escapes++
		w.escapedAt = now
		// The new flow starts clean: keypairs are expired, so data waits
		// for the handshake and only its initiation is watched.
		w.waiting, w.initAt, w.unanswered, w.probing, w.quietProbe, w.probeAsks = false, time.Time{}, 0, false, false, 0
		return flowEscapeNow
	}
	quiet := !silent && !w.probing && w.initAt.IsZero() && w.unanswered == 0 && w.escapes == 0 &&
		w.inUse(now, t) && now.Sub(w.lastHeard) >= t.probeEvery && now.Sub(w.lastProbe) >= t.probeEvery
	if quiet {
		w.quietProbe = true
	}
	if (silent || w.quietProbe) && w.initAt.IsZero() && w.unanswered == 0 {
		w.probing = true
		w.probeAsks++
		if w.probeAsks == 1 {
			w.lastProbe = now
		}
		if w.probeAsks > 1 {
			// Upstream swallowed the probe: it sent a handshake in the
			// last 5 s. Waiting that out would add up to 5 s.
			return flowForceProbe
		}
		return flowProbe
	}
	return flowNone
}

// backoff is the wait before the next escape from a still-silent endpoint
// (package doc, 5.): one handshake wait for the first quickEscapes after
// the first, steadyBackoff while the spell is younger than steadyFor, then
// maxBackoff, which also caps the others.
func (w *flowWatch) backoff(now time.Time, t flowTimes) time.Duration {
	b := t.maxBackoff
	switch {
	case w.escapes <= quickEscapes:
		b = t.handshake
	case now.Sub(w.firstEscape) < steadyFor:
		b = steadyBackoff
	}
	return min(b, t.maxBackoff)
}

func (w *flowWatch) describe(now time.Time, silent bool, t flowTimes) string {
	var parts []string
	if silent {
		parts = append(parts, fmt.Sprintf("data unanswered for %v", now.Sub(w.waitingSent).Round(time.Millisecond)))
	}
	if w.quietProbe {
		parts = append(parts, fmt.Sprintf("nothing heard for %v", now.Sub(w.lastHeard).Round(time.Millisecond)))
	}
	if w.unanswered > 0 {
		parts = append(parts, fmt.Sprintf("%d handshake(s) unanswered for %v", w.unanswered, t.handshake))
	}
	return strings.Join(parts, ", ")
}

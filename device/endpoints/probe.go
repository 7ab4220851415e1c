package endpoints

// Probes: WireGuard answers nothing but a handshake initiation, so a
// silence that may be a dead path is settled by one.
//
//  1. Data silence (feature.Path): two sends unanswered for a round-trip
//     timeout is doubt; the monitor sends a probe handshake (keypairs
//     expired first only when upstream's 5 s limit would swallow it). Its
//     copies to the other candidates wait 2·RTO. Anything heard clears
//     the doubt; nothing heard for 2·RTO is dead: the peer turns suspect
//     and the copies leave.
//  2. A probe answered while the data stays unanswered is a one-way flow,
//     not a dead one: the least time between probes doubles from 1 s to
//     16 s, and halves again every 2 minutes.
//  3. A path whose last doubt was false (within 2 minutes) is lossy: its
//     probe waits for upstream's 5 s window rather than expire keypairs,
//     whose stalled data would make a lost probe look like death.
//  4. A peer in use that only receives, or only sends keepalives, never
//     has data unanswered: it is probed when it has heard nothing for
//     ProbeInterval, at most one probe per ProbeInterval. "In use": data
//     or keepalives sent within ProbeInterval, or data received within two.

import (
	"net/netip"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device/feature"
)

// probeState is a hostname peer's probing; guarded by hostPeer.mu.
type probeState struct {
	pending  bool          // the next initiation is the monitor's probe
	out      bool          // a probe is outstanding
	quiet    bool          // it is for quiet (nothing heard), not for unanswered data
	answered bool          // the probe's response came (gotAnswer)
	at       time.Time     // the last probe
	lossy    feature.Lossy // the last probe of a silence that ended: a live, lossy path
	sent     uint64
	oneWay   feature.OneWay // least time between probes of data silence
	respAt   time.Time      // the last handshake response we sent
}

// judge reads hp's silence and returns the probe to send (outside every
// lock), or nil.
func (e *Endpoints) judge(hp *hostPeer, now time.Time, m int64) func(*wgdevice.Peer) {
	hp.path.Update(m) // the monitor is the path's owner
	v := hp.path.Check(m, e.cfg.ReplyTimeout, 2*e.cfg.ReplyTimeout)
	hp.mu.Lock()
	defer hp.mu.Unlock()
	ps := &hp.probe
	if ps.out && !hp.path.Probing() {
		// The silence ended without a failover: the doubt was false (a
		// lossy path), and if only the probe was answered, one-way.
		ps.out = false
		if !ps.quiet {
			ps.lossy.FalseDoubt(now)
			if ps.answered {
				ps.oneWay.Grow(now)
			}
		}
	}
	ps.answered = false
	switch v {
	case feature.Dead:
		if hp.suspect.Load() {
			return nil
		}
		dst := netip.AddrPort{}
		if box := hp.dst.Load(); box != nil {
			dst = box.addr
		}
		e.forceResolveLocked(hp, now)
		if len(alternatives(hp.cands, dst)) == 0 {
			return nil
		}
		hp.suspect.Store(true)
		ps.out = false // what ends this silence is a failover, not a false doubt
		hp.suspectSince = now
		hp.cursor = 0
		hp.nextNudge = now
		hp.path.Taint()
		srtt, rttvar, _ := hp.path.RTT.Get()
		e.host.Verbosef("%s - no reply from %s for %v (probe unanswered; rtt %v ± %v), trying the other addresses of %s",
			hp.name, dst, hp.path.SilentFor(m).Round(time.Millisecond),
			srtt.Round(time.Millisecond), rttvar.Round(time.Millisecond), hp.hp.String())
		return nil
	case feature.Doubt:
		if ps.out || hp.path.Probing() || now.Sub(ps.at) < ps.oneWay.Wait(now) {
			return nil
		}
		ps.out, ps.quiet = true, false
		return e.probeLocked(hp, now, m, "data unanswered")
	}
	pi := e.cfg.ProbeInterval
	if pi <= 0 || hp.suspect.Load() || ps.out || hp.path.Probing() || now.Sub(ps.at) < pi {
		return nil
	}
	rx, tx, drx := hp.rxAt.Load(), hp.txAt.Load(), hp.dataRxAt.Load()
	inUse := (tx != 0 && m-tx < int64(pi)) || (drx != 0 && m-drx < int64(2*pi))
	if !inUse || (rx != 0 && m-rx < int64(pi)) {
		return nil
	}
	ps.out, ps.quiet = true, true
	return e.probeLocked(hp, now, m, "nothing heard")
}

// probeLocked records a probe and returns the function that sends it.
func (e *Endpoints) probeLocked(hp *hostPeer, now time.Time, m int64, why string) func(*wgdevice.Peer) {
	ps := &hp.probe
	// Upstream sends no initiation within RekeyTimeout of its last
	// handshake message (initiation or response); expiring the keypairs
	// lifts that, at the cost of a round trip of queued data.
	last := hp.init.sentAt
	if ps.respAt.After(last) {
		last = ps.respAt
	}
	expire := !last.IsZero() && now.Sub(last) < wgdevice.RekeyTimeout+500*time.Millisecond
	if expire && ps.lossy.Is(now) {
		// A path whose last doubt was false is lossy: expiring its
		// keypairs stalls its data until the probe is answered, and a
		// lost probe would then look like death. Wait for upstream's
		// window instead.
		ps.out = false
		return nil
	}
	ps.at = now
	ps.sent++
	ps.pending = true
	hp.path.Probed(m)
	e.host.Verbosef("%s - %s for %v, probing with a handshake", hp.name, why, hp.path.SilentFor(m).Round(time.Millisecond))
	return func(p *wgdevice.Peer) {
		if expire {
			p.ExpireCurrentKeypairs()
		}
		p.SendHandshakeInitiation(false)
	}
}

package flowescape

// The watcher goroutine: samples the endpoints in use, and carries out
// what flowWatch.step decides (probes, escapes, nudges).

import (
	"net/netip"
	"strings"
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/internal/mono"
)

// tick is how often the watcher samples while traffic flows.
func (f *FlowEscape) tick() time.Duration { return flowTick }

// run is the watcher goroutine. It samples while any endpoint is busy;
// otherwise it sleeps until the next send or receipt, or, while an
// endpoint is in use, until its quiet probe may be due.
func (f *FlowEscape) run() {
	timer := time.NewTimer(f.tick())
	defer timer.Stop()
	for {
		select {
		case <-f.host.Done():
			return
		case <-timer.C:
		case <-f.wake:
		}
		if f.scan(time.Now()) {
			timer.Reset(f.tick())
			continue
		}
		// Nothing to watch: sleep until a packet wakes us. Scan once more
		// after raising the flag, so a packet that raced it is not missed.
		f.idle.Store(true)
		busy, inUse := f.scanUse(time.Now())
		if busy {
			f.idle.Store(false)
			timer.Reset(f.tick())
			continue
		}
		var due <-chan time.Time
		if inUse && f.cfg.ProbeInterval > 0 {
			timer.Reset(f.cfg.ProbeInterval / 8)
			due = timer.C
		}
		select {
		case <-f.host.Done():
			return
		case <-f.wake:
			timer.Reset(f.tick())
		case <-due:
			f.idle.Store(false)
			timer.Reset(0)
		}
	}
}

// scan steps every tracked endpoint and acts on the decisions. It reports
// whether any endpoint still needs watching.
func (f *FlowEscape) scan(now time.Time) (busy bool) {
	busy, _ = f.scanUse(now)
	return busy
}

// scanUse is scan that also reports whether any endpoint is in use (a
// quiet probe may come due without a packet to wake the watcher).
func (f *FlowEscape) scanUse(now time.Time) (busy, inUse bool) {
	if !f.active.Load() {
		f.flows.Lock()
		clear(f.flows.m)
		f.flows.Unlock()
		f.last.Store(nil)
		return false, false
	}
	f.flows.RLock()
	states := make([]*flowState, 0, len(f.flows.m))
	for _, st := range f.flows.m {
		states = append(states, st)
	}
	f.flows.RUnlock()

	m := mono.Now()
	for _, st := range states {
		heard := st.path.Update(m) // the watcher is the path's owner
		rto := st.path.RTT.RTO()
		times := flowTimes{
			// 3·RTO: one more than endpoint failover waits before it
			// copies the probe to a peer's other addresses, so that move,
			// when there is one, lands first.
			handshake:  min(3*rto, f.cfg.HandshakeTimeout),
			maxBackoff: f.cfg.MaxBackoff,
			probeEvery: f.cfg.ProbeInterval,
		}
		c := flowCounts{
			data: st.data.Load(), init: st.init.Load(), recv: st.recv.Load(), resp: st.resp.Load(),
			doubt:     st.path.Check(m, f.cfg.Silence, 0) == feature.Doubt,
			heard:     heard,
			heardData: st.heardData.Swap(false),
			sent:      st.sent.Swap(false),
		}
		switch st.w.step(now, c, times) {
		case flowProbe:
			f.probe(st, false)
		case flowForceProbe:
			f.probe(st, true)
		case flowEscapeNow:
			f.escape(st, now)
		case flowRecovered:
			f.host.Errorf("flow escape: %s answers again, %v after the first escape from it", st.addr, now.Sub(st.w.firstEscape).Round(time.Millisecond))
		}
		if st.w.busy(now, times) {
			busy = true
		} else if st.w.inUse(now, times) {
			inUse = true
		} else if now.Sub(st.w.lastActive) > flowForget {
			f.forget(st)
		}
	}
	return busy, inUse
}

func (f *FlowEscape) forget(st *flowState) {
	f.flows.Lock()
	if f.flows.m[st.addr] == st {
		delete(f.flows.m, st.addr)
	}
	f.flows.Unlock()
	f.last.CompareAndSwap(st, nil)
}

// peersAt returns the peers whose endpoint is addr, from a view of the
// device at most a second old: only needed when something is wrong, and a
// client has few peers.
func (f *FlowEscape) peersAt(addr netip.AddrPort, now time.Time) []feature.Key {
	if f.peerCache.byEP == nil || now.Sub(f.peerCache.at) > time.Second {
		v, err := f.host.View()
		if err != nil {
			f.host.Errorf("flow escape: failed to read peers: %v", err)
			return nil
		}
		f.peerCache.byEP = v.ByEndpoint()
		f.peerCache.at = now
	}
	return f.peerCache.byEP[addr]
}

// probe asks the peers at st's endpoint for a handshake. Upstream sends
// nothing if it sent one in the last 5 s; when that happened, the watcher
// asks again with force: the peers' keypairs are expired first, which lifts
// the limit. If the flow is alive after all, that costs one round trip of
// queued packets, against up to 5 s of waiting if it is dead.
func (f *FlowEscape) probe(st *flowState, force bool) {
	now := time.Now()
	if force && st.w.lossy.Is(now) {
		// A path whose last doubt was false is lossy: expiring its
		// keypairs stalls its data until the probe is answered, and a
		// lost probe would then look like death. Ask without forcing:
		// upstream sends it once its 5 s window has passed.
		force = false
	}
	st.path.Taint() // the answer may be the probe's (Karn)
	pks := f.peersAt(st.addr, now)
	if !st.w.probeLogged {
		st.w.probeLogged = true
		srtt, rttvar, _ := st.path.RTT.Get()
		what := "while sending"
		if st.w.quietProbe {
			what = "while in use"
		}
		f.host.Verbosef("flow escape: nothing heard from %s for %v %s (rtt %v ± %v), probing %d peer(s) with a handshake",
			st.addr, now.Sub(st.w.silentSince()).Round(time.Millisecond), what, srtt.Round(time.Millisecond), rttvar.Round(time.Millisecond), len(pks))
	}
	for _, pk := range pks {
		if p := f.host.Upstream().LookupPeer(pk); p != nil {
			if force {
				p.ExpireCurrentKeypairs()
			}
			p.SendHandshakeInitiation(false)
		}
	}
}

// escape moves the device to a new random source port and restarts the
// handshake of the peers at st's endpoint through it.
func (f *FlowEscape) escape(st *flowState, now time.Time) {
	select {
	case <-f.host.Done():
		return
	default:
	}
	if !f.host.IsUp() {
		return
	}
	f.peerCache.byEP = nil // read afresh: a peer may have just moved
	pks := f.peersAt(st.addr, now)
	if len(pks) == 0 {
		// Not a configured endpoint (a roaming peer moved on, or endpoint
		// failover moved it): nothing to escape from.
		return
	}
	oldPort := f.host.Bind().Port()
	newPort := oldPort
	for try := 0; try < 3 && newPort == oldPort; try++ {
		random := uint16(0)
		if err := f.host.Configure(f.Name(), feature.Config{ListenPort: &random}); err != nil {
			f.host.Errorf("flow escape: failed to move to a new source port: %v", err)
			return
		}
		newPort = f.host.Bind().Port()
	}
	f.host.Counters().FlowEscapes.Add(1)
	st.path.Reset()
	st.inits.Store(0)
	names := make([]string, len(pks))
	for i, pk := range pks {
		names[i] = feature.ShortKey(pk)
	}
	f.host.Errorf("flow escape: %s %s unanswered (%s), moved from source port %d to %d (escape %d)",
		strings.Join(names, ", "), st.addr, st.w.reason, oldPort, newPort, st.w.escapes)
	for _, pk := range pks {
		if p := f.host.Upstream().LookupPeer(pk); p != nil {
			p.ExpireCurrentKeypairs()
			p.SendHandshakeInitiation(false)
		}
	}
	others, initiate := f.nudges(st, now)
	for _, a := range others {
		for _, pk := range f.peersAt(a, now) {
			if p := f.host.Upstream().LookupPeer(pk); p != nil {
				p.SendKeepalive()
				if initiate {
					p.SendHandshakeInitiation(false)
				}
			}
		}
	}
}

// nudges says which other endpoints' peers an escape from st nudges, and
// whether with an initiation. Every flow moved: a keepalive on every
// escape lets a plain server follow at once (it is not rate-limited and
// stalls nothing); an initiation, which a balancer that re-hashed the new
// flow needs, goes at most once per nudgeEvery across the device, so a
// burst of escapes, or several silent endpoints, cost a live peer at most
// one handshake per 5 s. Peers that are themselves silent need no more:
// their own watch escapes for them.
func (f *FlowEscape) nudges(st *flowState, now time.Time) (others []netip.AddrPort, initiate bool) {
	f.flows.RLock()
	for a, o := range f.flows.m {
		if a != st.addr && !o.w.lastActive.IsZero() && now.Sub(o.w.lastActive) < othersInUse {
			others = append(others, a)
		}
	}
	f.flows.RUnlock()
	if len(others) > 0 && (f.nudgedAt.IsZero() || now.Sub(f.nudgedAt) >= nudgeEvery) {
		f.nudgedAt = now
		initiate = true
	}
	return others, initiate
}

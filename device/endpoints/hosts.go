package endpoints

// Hostname peers: set and removed, resolved on the feature's own
// goroutine, their candidates applied.

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device/feature"

	"github.com/wghooks/wghooks/internal/mono"
)

// SetHost gives the peer with public key pk a hostname endpoint
// ("host:port", or "[v6]:port" / "v4:port" for a fixed address kept as a
// candidate list of one). The name is resolved on the feature's goroutine;
// SetHost returns at once. An empty hostport removes the hostname and
// leaves the endpoint in use as it is.
func (e *Endpoints) SetHost(pk feature.Key, hostport string) error {
	return e.setHost(pk, hostport, false)
}

func (e *Endpoints) setHost(pk feature.Key, s string, fromConfig bool) error {
	if s == "" {
		e.removeHost(pk)
		return nil
	}
	h, err := parseHostPort(s)
	if err != nil {
		return err
	}
	peer := e.host.Upstream().LookupPeer(pk)
	if peer == nil {
		return fmt.Errorf("failed to set endpoint %q of %s: no such peer", s, feature.ShortKey(pk))
	}
	e.mu.Lock()
	hp := e.peers[pk]
	if hp == nil {
		hp = &hostPeer{pk: pk, name: feature.ShortKey(pk), fromConfig: fromConfig}
		hp.mac1.Init(pk)
		e.peers[pk] = hp
		e.updateTable(func(t *peerTable) { t.all = append(t.all, hp) })
	}
	e.mu.Unlock()

	hp.mu.Lock()
	changed := hp.hp != h || hp.upstream != peer
	hp.hp = h
	hp.upstream = peer
	if changed {
		hp.cands = nil
		hp.resolveFails = 0
		hp.lastErr = ""
		hp.resolveAt = time.Time{} // now
		e.addrsChangedLocked(hp)
	}
	hp.mu.Unlock()
	e.host.Verbosef("%s - endpoint host set to %s", hp.name, h)
	e.wake()
	return nil
}

func (e *Endpoints) removeHost(pk feature.Key) {
	e.mu.Lock()
	hp := e.peers[pk]
	delete(e.peers, pk)
	delete(e.pending, pk)
	e.mu.Unlock()
	if hp == nil {
		return
	}
	hp.suspect.Store(false)
	e.updateTable(func(t *peerTable) {
		t.all = without(t.all, hp)
		for k, v := range t.local {
			if v == hp {
				delete(t.local, k)
			}
		}
		for k, v := range t.remote {
			if v == hp {
				delete(t.remote, k)
			}
		}
		for a, list := range t.byAddr {
			if l := without(list, hp); len(l) > 0 {
				t.byAddr[a] = l
			} else {
				delete(t.byAddr, a)
			}
		}
	})
}

// monitor is the feature's housekeeping goroutine: it starts
// resolutions, applies pending hostnames, drops removed peers, and
// watches data for missing replies (failover.go).
func (e *Endpoints) monitor() {
	// Silence is judged every 20 ms (a tenth of the shortest probe wait)
	// while there are hostname peers; the rest every 100 ms.
	const fast, slow = 20 * time.Millisecond, 100 * time.Millisecond
	period := slow
	tick := time.NewTicker(period)
	defer tick.Stop()
	n := 0
	for {
		kicked := false
		select {
		case <-e.host.Done():
			return
		case <-tick.C:
		case <-e.kick:
			kicked = true
		}
		e.clock.Store(mono.Now())
		active := e.active.Load() > 0
		if n++; kicked || period == slow || n%5 == 0 {
			e.housekeep()
		}
		if active {
			e.watchReplies(time.Now())
		}
		want := slow
		if active {
			want = fast
		}
		if want != period {
			period = want
			tick.Reset(period)
		}
	}
}

func (e *Endpoints) housekeep() {
	now := time.Now()
	e.mu.Lock()
	all := make([]*hostPeer, 0, len(e.peers))
	for _, hp := range e.peers {
		all = append(all, hp)
	}
	e.mu.Unlock()
	var gone []*hostPeer
	var due []*hostPeer
	for _, hp := range all {
		// Never ask upstream with hp.mu held: upstream sends (and so
		// runs OnSend, which takes hp.mu) while holding its own locks.
		cur := e.host.Upstream().LookupPeer(hp.pk)
		hp.mu.Lock()
		if cur == nil || cur != hp.upstream {
			// Removed, or removed and configured again: start over.
			hp.mu.Unlock()
			gone = append(gone, hp)
			continue
		}
		if !hp.resolving && !now.Before(hp.resolveAt) {
			hp.resolving = true
			due = append(due, hp)
		}
		hp.mu.Unlock()
	}

	for _, hp := range gone {
		hp.mu.Lock()
		fromConfig, h := hp.fromConfig, hp.hp
		hp.mu.Unlock()
		e.removeHost(hp.pk)
		if fromConfig {
			e.mu.Lock()
			e.pending[hp.pk] = h
			e.mu.Unlock()
		}
	}
	e.mu.Lock()
	waiting := make(map[feature.Key]hostPort, len(e.pending))
	for pk, h := range e.pending {
		waiting[pk] = h
	}
	e.mu.Unlock()
	pending := map[feature.Key]hostPort{}
	for pk, h := range waiting {
		if e.host.Upstream().LookupPeer(pk) != nil {
			pending[pk] = h
		}
	}
	e.mu.Lock()
	for pk := range pending {
		delete(e.pending, pk)
	}
	e.mu.Unlock()
	for pk, h := range pending {
		if err := e.setHost(pk, h.String(), true); err != nil {
			e.host.Errorf("%v", err)
		}
	}
	for _, hp := range due {
		e.host.Go(func() { e.resolve(hp) })
	}
}

// resolve runs one resolution of hp's name and applies the answer.
func (e *Endpoints) resolve(hp *hostPeer) {
	hp.mu.Lock()
	h := hp.hp
	hp.mu.Unlock()
	addrs, ttl, err := resolveOnce(e.ctx, e.cfg.Resolver, h.host, e.cfg.ResolveTimeout)
	if e.ctx.Err() != nil {
		return
	}
	hp.mu.Lock()
	defer hp.mu.Unlock()
	hp.resolving = false
	if hp.hp != h {
		hp.resolveAt = time.Time{} // changed meanwhile: again, now
		e.wake()
		return
	}
	now := time.Now()
	if err != nil {
		hp.resolveFails++
		wait := resolveBackoff(hp.resolveFails)
		hp.resolveAt = now.Add(wait)
		hp.lastErr = err.Error()
		e.host.Errorf("%s - failed to resolve endpoint %q (keeping %d known addresses, retry in %v): %v", hp.name, h.String(), len(hp.cands), wait, err)
		return
	}
	hp.resolveFails = 0
	hp.lastErr = ""
	hp.resolvedAt = now
	hp.ttl = nextResolve(ttl, e.cfg.MinTTL, e.cfg.MaxTTL, e.cfg.UnknownTTL)
	hp.resolveAt = now.Add(hp.ttl)
	e.applyCandidatesLocked(hp, addrs, now)
}

// applyCandidatesLocked installs a new answer. When the address in use is
// not part of it, the peer moves to the first candidate (and a session
// that was alive re-handshakes there). Called with hp.mu held.
func (e *Endpoints) applyCandidatesLocked(hp *hostPeer, addrs []netip.Addr, now time.Time) {
	old := make(map[netip.AddrPort]candidate, len(hp.cands))
	for _, c := range hp.cands {
		old[c.addr] = c
	}
	cands := make([]candidate, 0, len(addrs))
	same := len(addrs) == len(hp.cands)
	for i, a := range addrs {
		ap := netip.AddrPortFrom(a, hp.hp.port)
		if c, ok := old[ap]; ok {
			cands = append(cands, c)
		} else {
			ep, err := e.host.Bind().ParseEndpoint(ap.String())
			if err != nil {
				e.host.Errorf("%s - failed to use address %s of %q: %v", hp.name, ap, hp.hp.String(), err)
				continue
			}
			cands = append(cands, candidate{addr: ap, ep: ep})
		}
		if same && hp.cands[i].addr != ap {
			same = false
		}
	}
	if len(cands) == 0 {
		return
	}
	if !same {
		list := make([]string, len(cands))
		for i, c := range cands {
			list[i] = c.addr.String()
		}
		e.host.Verbosef("%s - %s resolves to %s", hp.name, hp.hp.String(), strings.Join(list, ", "))
	}
	hp.cands = cands
	if !same {
		e.addrsChangedLocked(hp)
	}
	inUse := netip.AddrPort{}
	if b := hp.dst.Load(); b != nil {
		inUse = b.addr
	}
	for _, c := range cands {
		if c.addr == inUse {
			return
		}
	}
	// The address in use is gone from DNS (or none was chosen yet).
	first := cands[0]
	for _, c := range cands {
		if c.failedAt.IsZero() || now.Sub(c.failedAt) > time.Minute {
			first = c
			break
		}
	}
	peer := hp.upstream
	if peer == nil {
		return
	}
	peer.SetEndpointFromPacket(first.ep)
	hp.dst.Store(&epBox{ep: first.ep, addr: first.addr})
	if inUse.IsValid() {
		e.host.Verbosef("%s - %s no longer lists %s, moving to %s", hp.name, hp.hp.String(), inUse, first.addr)
		if rx := hp.rxAt.Load(); rx != 0 && e.coarseNow()-rx < int64(wgdevice.RejectAfterTime) {
			e.host.Go(func() { peer.SendHandshakeInitiation(false) }) // a live session follows the move
		}
		return
	}
	if hp.rxAt.Load() == 0 {
		// First address of a peer without a session: handshake now, so
		// that traffic queued before the name resolved (whose initiation
		// failed for want of an endpoint, arming a 5 s retry) goes at
		// once, and the candidates are raced before it is needed. An
		// initiation that did leave (to an endpoint configured beside the
		// name) is being raced already: a new one would orphan it, and
		// the server's answer to it would be refused.
		e.host.Go(func() {
			if e.initiationPending(hp) {
				return
			}
			peer.ExpireCurrentKeypairs()
			peer.SendHandshakeInitiation(false)
		})
	}
}

// initiationPending reports whether an initiation to hp left within the
// last RekeyTimeout and has no answer yet.
func (e *Endpoints) initiationPending(hp *hostPeer) bool {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	in := hp.init
	return in.gen > 0 && !in.answered && time.Since(in.sentAt) < wgdevice.RekeyTimeout
}

// forceResolveLocked asks for a resolution now, at most every
// forcedResolveGap: the address in use stopped answering.
func (e *Endpoints) forceResolveLocked(hp *hostPeer, now time.Time) {
	if now.Sub(hp.lastForced) < forcedResolveGap || hp.resolving {
		return
	}
	hp.lastForced = now
	hp.resolveAt = now
	e.wake()
}

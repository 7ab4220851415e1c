package endpoints

// Failover of hostname peers between their candidate addresses, driven by
// WireGuard's own messages (no ICMP):
//
//  1. Which peer a datagram belongs to: a handshake initiation or response
//     we send carries a mac1 keyed by the peer's public key
//     (CookieChecker.CheckMAC1 tells whose); it also carries our index and,
//     for a response, the peer's. Data we send names the peer's index,
//     data we receive names ours; responses and cookie replies name ours.
//     So the packet hooks map every datagram to its hostname peer with one
//     table lookup, without touching upstream.
//  2. Initiations (OnSend, type 1): the copy sender resends the exact
//     datagram to the other candidates in happy-eyeballs order, one every
//     Stagger, until a response or cookie reply for that initiation
//     arrives. After an unanswered initiation the first copy leaves at once.
//  3. Fail-back: an initiation to an IPv4 address of a peer with an IPv6
//     candidate is first sent to IPv6 (synchronously, so that copy arrives
//     first) when a fail-back is due.
//  4. Replies stopped (monitor, every 20 ms; probe.go): the peer's
//     feature.Path says doubt (two sends unanswered for a round-trip
//     timeout), the monitor sends a probe handshake, and when that is
//     unanswered too (dead) the peer is suspect: the probe's copies leave,
//     and its data and a keepalive every Stagger are copied to one other
//     candidate per Stagger, after the original has left, so a path that
//     still works wins the race and the copy is dropped as a replay.

import (
	"container/heap"
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/conn"

	"github.com/wghooks/wghooks/internal/mono"
)

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// ReceiveTypes selects what names a hostname peer's session: responses,
// cookie replies and data.
func (e *Endpoints) ReceiveTypes() uint8 {
	return conn.TypeMask(conn.MessageResponse, conn.MessageCookieReply, conn.MessageTransport)
}

// OnSend watches what the device sends to hostname peers and queues
// copies for the copy sender. It takes the feature's own locks briefly and
// never calls into the upstream device; for a fail-back it sends one copy
// of the initiation (Bind.SendInner) before the original leaves.
func (e *Endpoints) OnSend(bufs [][]byte, ep wgconn.Endpoint) {
	if e.active.Load() == 0 || len(bufs) == 0 {
		return
	}
	b := bufs[0]
	if len(b) < conn.MessageTransportHeader {
		return
	}
	switch b[0] {
	case conn.MessageTransport:
		e.sentData(bufs, ep)
	case conn.MessageInitiation:
		if len(bufs) == 1 && len(b) == conn.MessageInitiationSize {
			e.sentInitiation(b, ep)
		}
	case conn.MessageResponse:
		if len(bufs) == 1 && len(b) == conn.MessageResponseSize {
			e.sentResponse(b, ep)
		}
	}
}

// OnReceive notes replies and answers from hostname peers; it never holds
// a datagram.
func (e *Endpoints) OnReceive(p []byte, ep wgconn.Endpoint) conn.Verdict {
	if e.active.Load() == 0 {
		return conn.Pass
	}
	tab := e.tab.Load()
	switch p[0] {
	case conn.MessageTransport:
		if len(p) >= conn.MessageTransportHeader {
			if hp := tab.local[le32(p[4:8])]; hp != nil {
				if len(p) > conn.MessageKeepaliveSize {
					touch(&hp.dataRxAt, e.coarseNow())
				}
				e.gotReply(hp, ep)
			}
		}
	case conn.MessageResponse:
		if len(p) == conn.MessageResponseSize {
			if hp := tab.local[le32(p[8:12])]; hp != nil {
				e.gotAnswer(hp, le32(p[8:12]), le32(p[4:8]), true, ep)
			}
		}
	case conn.MessageCookieReply:
		if len(p) == conn.MessageCookieReplySize {
			if hp := tab.local[le32(p[4:8])]; hp != nil {
				e.gotAnswer(hp, le32(p[4:8]), 0, false, ep)
			}
		}
	}
	return conn.Pass
}

// identify finds the hostname peer a handshake message we send is for.
func identify(tab *peerTable, dst netip.AddrPort, msg []byte) *hostPeer {
	for _, hp := range tab.byAddr[dst] {
		if hp.mac1.CheckMAC1(msg) {
			return hp
		}
	}
	for _, hp := range tab.all {
		if hp.mac1.CheckMAC1(msg) {
			return hp
		}
	}
	return nil
}

func (hp *hostPeer) noteDst(ep wgconn.Endpoint) netip.AddrPort {
	addr := conn.DstAddrPort(ep)
	if box := hp.dst.Load(); box == nil || box.addr != addr {
		hp.dst.Store(&epBox{ep: ep, addr: addr})
	}
	return addr
}

// touch stores a coarse time in a only when it changed: the coarse clock
// moves once per monitor tick, so most packets only read the shared line.
func touch(a *atomic.Int64, t int64) {
	if a.Load() != t {
		a.Store(t)
	}
}

func (e *Endpoints) sentData(bufs [][]byte, ep wgconn.Endpoint) {
	b := bufs[0]
	hp := e.tab.Load().remote[le32(b[4:8])]
	if hp == nil {
		return
	}
	now := e.coarseNow()
	touch(&hp.txAt, now)
	if len(b) > conn.MessageKeepaliveSize || len(bufs) > 1 {
		hp.path.Sent() // nothing answers a keepalive
	}
	hp.noteDst(ep)
	if !hp.suspect.Load() {
		return
	}
	last := hp.lastCopy.Load()
	if now-last >= int64(20*time.Millisecond) && hp.lastCopy.CompareAndSwap(last, now) {
		e.queue(copyJob{kind: copyData, hp: hp, pkt: append([]byte(nil), b...)})
	}
}

func (e *Endpoints) sentInitiation(b []byte, ep wgconn.Endpoint) {
	tab := e.tab.Load()
	dst := conn.DstAddrPort(ep)
	hp := identify(tab, dst, b)
	if hp == nil {
		return
	}
	hp.noteDst(ep)
	idx := le32(b[4:8])
	now := time.Now()
	m := e.coarseNow() // the clock rxAt is read with
	hp.mu.Lock()
	prev := hp.init
	retry := prev.gen > 0 && !prev.answered && now.Sub(prev.sentAt) < 2*wgdevice.RekeyTimeout
	probe := hp.probe.pending
	hp.probe.pending = false
	rto := hp.path.RTT.RTO()
	// The path in use was heard from since the previous initiation left
	// (or, with none, within 2·RTO): it is alive, and an unanswered
	// initiation is loss, not death. Its copies wait 2·RTO, as a probe's.
	rx := hp.rxAt.Load()
	live := rx != 0 && ((prev.gen > 0 && rx > prev.sentMono) || time.Duration(m-rx) < 2*rto)
	hp.init = initiation{gen: prev.gen + 1, idx: idx, sentAt: now, sentMono: m, dst: dst, probe: probe}
	if retry {
		// Another initiation was outstanding: an answer could be to
		// either (Karn).
		hp.init.copied = true
	}
	gen := hp.init.gen
	evicted := hp.local.add(idx)
	var failback *candidate
	if dst.Addr().Is4() && !now.Before(hp.nextFailback) {
		failback = firstV6(hp.cands, now)
		if failback != nil {
			hp.nextFailback = now.Add(hp.failbackInterval(e.cfg.FailbackInterval))
		}
	}
	if retry && !live {
		e.forceResolveLocked(hp, now)
	}
	var wait time.Duration
	if probe || live {
		// Copies leave when the initiation has failed: 2·RTO.
		wait = min(2*rto, 2*e.cfg.ReplyTimeout)
	}
	hp.mu.Unlock()
	e.updateTable(func(t *peerTable) {
		t.local[idx] = hp
		if evicted != 0 && t.local[evicted] == hp {
			delete(t.local, evicted)
		}
	})
	var skip netip.AddrPort
	if failback != nil {
		// Before the original leaves, so that a working IPv6 path wins.
		if err := e.host.Bind().SendInner([][]byte{b}, failback.ep); err == nil {
			skip = failback.addr
			e.host.Verbosef("%s - trying IPv6 again: initiation to %s first", hp.name, failback.addr)
		}
	}
	e.queue(copyJob{kind: copyInitiation, hp: hp, gen: gen, pkt: append([]byte(nil), b...), dst: dst, skip: skip, retry: retry && wait == 0, wait: wait, at: now})
}

func firstV6(cands []candidate, now time.Time) *candidate {
	for i := range cands {
		c := &cands[i]
		if c.addr.Addr().Is6() && (c.failedAt.IsZero() || now.Sub(c.failedAt) > time.Minute) {
			return c
		}
	}
	return nil
}

func (hp *hostPeer) failbackInterval(base time.Duration) time.Duration {
	if hp.failbackEvery < base {
		hp.failbackEvery = base
	}
	return hp.failbackEvery
}

// sentResponse: the peer initiated to us, so it is alive and its indices
// are known.
func (e *Endpoints) sentResponse(b []byte, ep wgconn.Endpoint) {
	tab := e.tab.Load()
	hp := identify(tab, conn.DstAddrPort(ep), b)
	if hp == nil {
		return
	}
	hp.noteDst(ep)
	local, remote := le32(b[4:8]), le32(b[8:12])
	hp.mu.Lock()
	hp.probe.respAt = time.Now()
	evL := hp.local.add(local)
	evR := hp.remote.add(remote)
	hp.mu.Unlock()
	e.updateTable(func(t *peerTable) {
		t.local[local], t.remote[remote] = hp, hp
		if evL != 0 && t.local[evL] == hp {
			delete(t.local, evL)
		}
		if evR != 0 && t.remote[evR] == hp {
			delete(t.remote, evR)
		}
	})
	e.gotReply(hp, ep)
}

// gotReply notes that the peer was heard from (data, or an initiation we
// answered).
func (e *Endpoints) gotReply(hp *hostPeer, ep wgconn.Endpoint) {
	touch(&hp.rxAt, e.coarseNow())
	hp.path.Heard()
	if hp.suspect.Load() && hp.suspect.CompareAndSwap(true, false) {
		from := conn.DstAddrPort(ep)
		hp.mu.Lock()
		since := time.Since(hp.suspectSince)
		old := netip.AddrPort{}
		if box := hp.dst.Load(); box != nil {
			old = box.addr
		}
		moved := from != old && from.IsValid()
		if moved {
			e.movedLocked(hp, old, from)
		}
		hp.mu.Unlock()
		if moved {
			e.host.Verbosef("%s - replies again after %v, now from %s (was %s)", hp.name, since.Round(time.Millisecond), from, old)
		} else {
			e.host.Verbosef("%s - replies again after %v from %s", hp.name, since.Round(time.Millisecond), from)
		}
	}
}

// gotAnswer handles a response (or a cookie reply: the initiation arrived,
// the responder is only busy) to one of our initiations.
func (e *Endpoints) gotAnswer(hp *hostPeer, local, remote uint32, response bool, ep wgconn.Endpoint) {
	from := conn.DstAddrPort(ep)
	hp.mu.Lock()
	var moved bool
	var old netip.AddrPort
	if hp.init.idx == local && !hp.init.answered {
		hp.init.answered = true
		hp.init.answerBy = from
		hp.rtt = time.Since(hp.init.sentAt)
		if response && !hp.init.copied && from == hp.init.dst {
			hp.path.RTT.Sample(hp.rtt)
		}
		if response && hp.init.probe {
			hp.probe.answered = true
		}
		old = hp.init.dst
		if moved = from != old && from.IsValid(); moved {
			e.movedLocked(hp, old, from)
		}
	}
	var evicted uint32
	if response {
		evicted = hp.remote.add(remote)
	}
	if from.Addr().Is6() && hp.v6Since.IsZero() {
		hp.v6Since = time.Now()
	}
	hp.mu.Unlock()
	if response {
		e.updateTable(func(t *peerTable) {
			t.remote[remote] = hp
			if evicted != 0 && t.remote[evicted] == hp {
				delete(t.remote, evicted)
			}
		})
		e.gotReply(hp, ep)
	}
	if moved {
		e.host.Verbosef("%s - handshake answered from %s (initiation went to %s)", hp.name, from, old)
	}
}

// movedLocked accounts for the peer leaving address old for new: a
// failover, or a fail-back to IPv6. Leaving IPv6 soon after coming back
// to it doubles the fail-back interval. Called with hp.mu held.
func (e *Endpoints) movedLocked(hp *hostPeer, old, new netip.AddrPort) {
	hp.failovers++
	e.c.EndpointFailovers.Add(1)
	now := time.Now()
	switch {
	case old.Addr().Is6() && new.Addr().Is4():
		base := e.cfg.FailbackInterval
		if !hp.v6Since.IsZero() && now.Sub(hp.v6Since) < maxFailbackInterval && hp.failbackEvery >= base {
			hp.failbackEvery = min(2*hp.failbackEvery, maxFailbackInterval)
		} else {
			hp.failbackEvery = base
		}
		hp.v6Since = time.Time{}
		hp.nextFailback = now.Add(hp.failbackEvery)
	case new.Addr().Is6():
		hp.v6Since = now
	}
}

// stagger is the delay between copies to successive candidates.
func (e *Endpoints) staggerLocked(hp *hostPeer) time.Duration {
	s := e.cfg.Stagger
	if 2*hp.rtt > s {
		s = min(2*hp.rtt, 2*time.Second)
	}
	return s
}

// watchReplies runs on the monitor every 20 ms: it probes peers whose
// silence is in doubt (probe.go), marks those whose probe failed suspect,
// nudges suspect peers with a keepalive every Stagger (each keepalive,
// like data, is copied to the next candidate), and starts fail-back
// handshakes that are due.
func (e *Endpoints) watchReplies(now time.Time) {
	mono := mono.Now()
	for _, hp := range e.tab.Load().all {
		var nudge, failback bool
		probe := e.judge(hp, now, mono)
		hp.mu.Lock()
		if hp.suspect.Load() && !now.Before(hp.nextNudge) && now.Sub(hp.suspectSince) < 30*time.Second {
			if !hp.nextNudge.Equal(hp.suspectSince) {
				hp.cursor++
			}
			hp.nextNudge = now.Add(e.staggerLocked(hp))
			nudge = true
		}
		if box := hp.dst.Load(); box != nil && box.addr.Addr().Is4() && !hp.suspect.Load() &&
			!hp.nextFailback.IsZero() && !now.Before(hp.nextFailback) &&
			mono-hp.txAt.Load() < int64(e.cfg.FailbackInterval) && firstV6(hp.cands, now) != nil {
			failback = true
		}
		hp.mu.Unlock()
		peer := e.host.Upstream().LookupPeer(hp.pk)
		if peer == nil {
			continue
		}
		if probe != nil {
			probe(peer)
		}
		if nudge {
			hp.lastCopy.Store(0) // let this keepalive's copy through
			peer.SendKeepalive()
		}
		if failback {
			// The initiation's OnSend sends the IPv6 copy first and
			// schedules the next fail-back.
			peer.SendHandshakeInitiation(false)
		}
	}
}

// alternatives returns the candidates other than dst.
func alternatives(cands []candidate, dst netip.AddrPort) []candidate {
	out := make([]candidate, 0, len(cands))
	for _, c := range cands {
		if c.addr != dst {
			out = append(out, c)
		}
	}
	return out
}

// Copies are sent by one goroutine with a timer heap, so packet paths
// only queue them.

type copyKind int

const (
	copyInitiation copyKind = iota + 1
	copyData
)

type copyJob struct {
	kind  copyKind
	hp    *hostPeer
	gen   uint64
	pkt   []byte
	dst   netip.AddrPort // where the original went
	skip  netip.AddrPort // already sent there (fail-back)
	retry bool
	wait  time.Duration // before the first copy, when not the stagger (a probe)
	at    time.Time
}

// queue hands a job to the copy sender; a full queue drops it (a copy is
// an optimisation, never the only packet).
func (e *Endpoints) queue(j copyJob) {
	select {
	case e.jobs <- j:
	default:
	}
}

type scheduledCopy struct {
	at   time.Time
	hp   *hostPeer
	gen  uint64
	pkt  []byte
	cand candidate
}

type copyHeap []scheduledCopy

func (h copyHeap) Len() int           { return len(h) }
func (h copyHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h copyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *copyHeap) Push(x any)        { *h = append(*h, x.(scheduledCopy)) }
func (h *copyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// maxScheduledCopies bounds the copy sender's heap.
const maxScheduledCopies = 4096

func (e *Endpoints) copySender() {
	var h copyHeap
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Hour
		if len(h) > 0 {
			wait = time.Until(h[0].at)
		}
		timer.Reset(max(wait, 0))
		select {
		case <-e.host.Done():
			return
		case j := <-e.jobs:
			timer.Stop()
			switch j.kind {
			case copyInitiation:
				e.planInitiation(&h, j)
			case copyData:
				e.sendDataCopy(j)
			}
		case <-timer.C:
		}
		now := time.Now()
		for len(h) > 0 && !h[0].at.After(now) {
			sc := heap.Pop(&h).(scheduledCopy)
			e.sendInitiationCopy(sc)
		}
	}
}

// planInitiation schedules the copies of one initiation.
func (e *Endpoints) planInitiation(h *copyHeap, j copyJob) {
	hp := j.hp
	hp.mu.Lock()
	if hp.init.gen != j.gen {
		hp.mu.Unlock()
		return
	}
	alts := alternatives(hp.cands, j.dst)
	stagger := e.staggerLocked(hp)
	hp.mu.Unlock()
	at := j.at.Add(stagger)
	switch {
	case j.wait > 0:
		at = j.at.Add(j.wait)
	case j.retry:
		at = j.at
	}
	for _, c := range alts {
		if c.addr == j.skip {
			continue
		}
		if h.Len() >= maxScheduledCopies {
			return
		}
		heap.Push(h, scheduledCopy{at: at, hp: hp, gen: j.gen, pkt: j.pkt, cand: c})
		at = at.Add(stagger)
	}
}

func (e *Endpoints) sendInitiationCopy(sc scheduledCopy) {
	hp := sc.hp
	hp.mu.Lock()
	// The copy is wanted while its initiation is the latest, unanswered,
	// and the path unheard since it left. A path heard from since is
	// alive: its initiation was lost, or is slow, and upstream retries it
	// there.
	wanted := hp.init.gen == sc.gen && !hp.init.answered && hp.rxAt.Load() < hp.init.sentMono
	if wanted {
		hp.init.copied = true
	}
	hp.mu.Unlock()
	if !wanted {
		return
	}
	hp.path.Taint()
	e.sendCopy(hp, sc.pkt, sc.cand, "initiation")
}

func (e *Endpoints) sendDataCopy(j copyJob) {
	hp := j.hp
	if !hp.suspect.Load() {
		return
	}
	hp.mu.Lock()
	dst := netip.AddrPort{}
	if box := hp.dst.Load(); box != nil {
		dst = box.addr
	}
	alts := alternatives(hp.cands, dst)
	var c candidate
	if len(alts) > 0 {
		c = alts[hp.cursor%len(alts)]
	}
	hp.mu.Unlock()
	if c.ep == nil {
		return
	}
	hp.path.Taint()
	e.sendCopy(hp, j.pkt, c, "data")
}

func (e *Endpoints) sendCopy(hp *hostPeer, pkt []byte, c candidate, what string) {
	err := e.host.Bind().SendInner([][]byte{pkt}, c.ep)
	hp.mu.Lock()
	for i := range hp.cands {
		if hp.cands[i].addr == c.addr {
			if err != nil {
				hp.cands[i].failedAt = time.Now()
			} else {
				hp.cands[i].failedAt = time.Time{}
			}
		}
	}
	hp.mu.Unlock()
	if err != nil {
		e.host.Verbosef("%s - failed to send %s copy to %s: %v", hp.name, what, c.addr, err)
	}
}

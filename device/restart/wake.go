package restart

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
)

// Stale-session wake.
//
// After a restart, clients keep sending data on sessions the new process
// never made: the receiver index in each data packet is one the old
// process issued. Upstream drops such packets silently. The wake learns
// which indices this process issues (the sender index of every initiation
// and response it sends, seen in OnSend), and when data arrives on any
// other index from an address that is a known peer's endpoint, it starts a
// handshake to that peer at once.
//
// The check costs the data path two atomic loads while a flow stays on
// one index (the last good and last stale index are remembered), and runs
// only during staleWindow after each Up: a session from before Up is
// rejected by its own sender within RejectAfterTime, so later there is
// nothing stale left to see. The decision and the handshake run on the
// wake goroutine; upstream's 5 s limit on initiations applies, and each
// peer is woken at most once per 5 s.

const (
	// staleWindow is how long after Up stale sessions can still arrive.
	staleWindow = wgdevice.RejectAfterTime + 2*wgdevice.RekeyTimeout
	// maxIssuedIndices bounds the indices remembered; past it the wake
	// turns itself off until the next Up (it never guesses).
	maxIssuedIndices = 1 << 18
	// wakeQueueLen bounds stale packets waiting for the wake goroutine;
	// more are dropped (one per peer is enough).
	wakeQueueLen = 64
)

type staleWake struct {
	// on is set by init, before any goroutine runs: stale-session wake is
	// configured. It never changes after.
	on                 bool
	active             atomic.Bool
	lastGood, lastMiss atomic.Uint32

	issued struct {
		sync.RWMutex
		m map[uint32]struct{}
	}
	misses chan wgconn.Endpoint

	timer struct {
		sync.Mutex
		t *time.Timer
	}

	// addrs maps endpoints to peers, refreshed by broadcasts and, at most
	// every 5 s, by the wake goroutine when it meets an unknown address.
	addrs struct {
		sync.Mutex
		m  map[string]feature.Key
		at time.Time
	}
}

func (w *staleWake) init() {
	w.on = true
	w.issued.m = make(map[uint32]struct{})
	w.misses = make(chan wgconn.Endpoint, wakeQueueLen)
	w.addrs.m = make(map[string]feature.Key)
}

// reset starts a stale window: called before each Up.
func (w *staleWake) reset() {
	w.issued.Lock()
	w.issued.m = make(map[uint32]struct{})
	w.issued.Unlock()
	w.lastGood.Store(0)
	w.lastMiss.Store(0)
	w.active.Store(true)
	w.timer.Lock()
	if w.timer.t != nil {
		w.timer.t.Stop()
	}
	w.timer.t = time.AfterFunc(staleWindow, func() { w.active.Store(false) })
	w.timer.Unlock()
}

func (w *staleWake) stop() {
	w.active.Store(false)
	w.timer.Lock()
	if w.timer.t != nil {
		w.timer.t.Stop()
	}
	w.timer.Unlock()
}

// sawSent records the sender index of a handshake message we send. Called
// on the sending goroutine.
func (w *staleWake) sawSent(buf []byte) {
	if !w.active.Load() || len(buf) < 8 {
		return
	}
	if t := buf[0]; t != conn.MessageInitiation && t != conn.MessageResponse {
		return
	}
	idx := binary.LittleEndian.Uint32(buf[4:8])
	w.issued.Lock()
	if len(w.issued.m) >= maxIssuedIndices {
		w.active.Store(false)
	} else {
		w.issued.m[idx] = struct{}{}
	}
	w.issued.Unlock()
}

// sawTransport checks a data packet's receiver index. Called on a receive
// goroutine; it never blocks.
func (w *staleWake) sawTransport(packet []byte, ep wgconn.Endpoint) {
	if !w.active.Load() || len(packet) < conn.MessageTransportHeader {
		return
	}
	idx := binary.LittleEndian.Uint32(packet[4:8])
	if idx == w.lastGood.Load() || idx == w.lastMiss.Load() {
		return
	}
	w.issued.RLock()
	_, ok := w.issued.m[idx]
	w.issued.RUnlock()
	if ok {
		w.lastGood.Store(idx)
		return
	}
	w.lastMiss.Store(idx)
	select {
	case w.misses <- ep:
	default:
	}
}

// learn replaces the endpoint → peer map from a device view.
func (w *staleWake) learn(v *feature.View) {
	if !w.on {
		return // stale-session wake is off
	}
	m := make(map[string]feature.Key, len(v.Peers))
	for _, p := range v.Peers {
		if p.Endpoint != "" {
			m[p.Endpoint] = p.PublicKey
		}
	}
	w.addrs.Lock()
	w.addrs.m, w.addrs.at = m, time.Now()
	w.addrs.Unlock()
}

func (w *staleWake) peerAt(addr string) (pk feature.Key, ok bool, age time.Duration) {
	w.addrs.Lock()
	defer w.addrs.Unlock()
	pk, ok = w.addrs.m[addr]
	return pk, ok, time.Since(w.addrs.at)
}

// wakeLoop handles stale packets handed over by sawTransport.
func (r *Restart) wakeLoop() {
	w := &r.wake
	tick := time.NewTicker(wgdevice.RekeyTimeout)
	defer tick.Stop()
	woken := make(map[feature.Key]time.Time)
	for {
		select {
		case <-r.host.Done():
			return
		case <-tick.C:
			// Let a peer whose first wake was absorbed by the 5 s limit
			// be woken again by the same stale index.
			w.lastMiss.Store(0)
			for pk, t := range woken {
				if time.Since(t) >= wgdevice.RekeyTimeout {
					delete(woken, pk)
				}
			}
		case ep := <-w.misses:
			r.wakeFrom(ep, woken)
		}
	}
}

func (r *Restart) wakeFrom(ep wgconn.Endpoint, woken map[feature.Key]time.Time) {
	w := &r.wake
	addr := feature.NormalizeEndpoint(ep.DstToString())
	pk, ok, age := w.peerAt(addr)
	if !ok && age >= wgdevice.RekeyTimeout {
		if v, err := r.host.View(); err == nil {
			w.learn(&v)
			pk, ok, _ = w.peerAt(addr)
		}
	}
	if !ok {
		return // not a known peer's address: an unauthenticated packet moves nothing
	}
	if t, seen := woken[pk]; seen && time.Since(t) < wgdevice.RekeyTimeout {
		return
	}
	woken[pk] = time.Now()
	peer := r.host.Upstream().LookupPeer(pk)
	if peer == nil {
		return
	}
	r.c.StaleWakes.Add(1)
	r.host.Verbosef("%s - data from %s on a session this process never made: initiating a handshake", feature.ShortKey(pk), addr)
	if err := peer.SendHandshakeInitiation(false); err != nil {
		r.host.Verbosef("%s - stale-session wake: %v", feature.ShortKey(pk), err)
	}
}

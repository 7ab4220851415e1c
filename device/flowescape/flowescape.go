// Package flowescape is the client side of running behind a UDP load
// balancer: flow escape.
//
// Servers sharing one key behind a flow-hashing balancer (AWS NLB and the
// like) look like one server to a client, until the backend carrying the
// client's flow dies: the balancer keeps that flow pinned to the dead
// backend for as long as packets keep arriving on it, and a WireGuard
// client with keepalives never stops sending. Moving to a new local source
// port makes a new flow, which the balancer hashes to a healthy backend;
// that backend holds the same key and answers a fresh handshake.
//
// The watcher tracks each destination endpoint (address and port) with
// stamps set on the packet goroutines, ordered by one sequence per
// endpoint: the latest data batch sent (keepalives excluded: nothing
// answers them), the latest handshake initiation sent, the latest
// datagram of any type received from it, and the latest handshake
// response. Each endpoint also measures its round trip (feature.Path:
// initiation to response, data out to anything back). A goroutine samples
// them every 20 ms, only while there is traffic or something unresolved,
// and decides in the pure flowWatch.step:
//
//  1. Strikes: data in doubt (feature.Path: two sends unanswered for a
//     round-trip timeout, RTO = SRTT + 4·RTTVAR, at least 100 ms) is one;
//     each initiation left unanswered for 3·RTO is one (a peer with other
//     addresses moves there at 2·RTO: endpoint failover goes first).
//  2. One strike from silence alone asks for a probe: a handshake
//     initiation to the peers at that endpoint. If upstream's 5 s limit on
//     initiations swallows it, the next sample forces it (keypairs
//     expired first). A probe answered by a handshake while the data
//     stays unanswered proves the flow one-way, not dead: that endpoint
//     then waits for a silence of at least 1 s, doubling up to 16 s, and
//     halving again every 2 minutes.
//  3. Two strikes escape: silence plus an unanswered probe (about 4·RTO,
//     0.4 s at the least), or an unanswered initiation and its first
//     retry when no data flows. An endpoint in use that has heard nothing
//     for ProbeInterval (it only receives, or only sends keepalives) is
//     probed, at most once per ProbeInterval, and escapes when that probe
//     is unanswered. The device rebinds to a new random port
//     (listen_port=0, from the watcher goroutine, never from a packet
//     goroutine: the rebind waits for the receive goroutines), the peers at
//     that endpoint get their keypairs expired (which also lifts upstream's
//     5 s limit) and a new initiation, and other peers in use are nudged
//     (6. below).
//  4. A path whose last doubt was false (within 2 minutes) is lossy: a
//     swallowed probe is not forced (keypairs expired) but waits for
//     upstream's 5 s window, as stalled data would make a lost probe
//     look like death.
//  5. After an escape one more unanswered initiation escapes again, until
//     the endpoint is heard from (a silent spell). The first six escapes
//     of a spell follow each other as soon as the new flow's initiation
//     is lost (the handshake wait); then one per 5 s (upstream's
//     REKEY_TIMEOUT, the pace of its own handshake retries) until the
//     spell is 90 s old (REKEY_ATTEMPT_TIME), then one per MaxBackoff
//     (1 min). Behind a balancer that hashes each new flow to one dead
//     backend of two, k escapes all land on it with probability 2^-k:
//     10 escapes in the first 30 s leave about 1 client in 1000 stuck
//     that long, 23 by 90 s leave none worth counting. A server that is simply down costs 6
//     rebinds in the first seconds, then one per 5 s (beside an initiation
//     upstream would send anyway) and one per minute after 90 s.
//  6. A rebind moves every flow, so each escape nudges the other peers in
//     use (anything heard, or data or a handshake sent, within 2 minutes):
//     a keepalive, which a plain server follows to the new port at once,
//     and, at most once per 5 s across the device, an initiation, so a
//     balancer in front of them re-routes them too: at most one handshake
//     per 5 s for each other peer, one per escape once a spell is past
//     90 s.
//
// Flow escape is off when a fixed listen_port is configured (a server: its
// port is its address), and can be turned off by Config.FlowEscapeOff or
// the UAPI key wghooks_flow_escape=off.
package flowescape

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/internal/mono"
	"github.com/wghooks/wghooks/uapi"
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

	// lossyFor is how long a false doubt marks a path lossy: its probes
	// then never expire keypairs.
	lossyFor = 2 * time.Minute
	// maxFlows bounds the endpoints tracked at once.
	maxFlows = 4096
	// flowForget drops an endpoint's state after this long unused.
	flowForget = 5 * time.Minute
	// keepaliveSize is the size of a transport message with no payload.
	keepaliveSize = conn.MessageTransportHeader + 16
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

// FlowEscape is the flow-escape feature.
type FlowEscape struct {
	feature.Base
	host feature.Host
	cfg  Config

	fixedPort  atomic.Bool // a fixed listen_port is configured
	runtimeOff atomic.Bool // wghooks_flow_escape=off
	active     atomic.Bool // watching: none of the above, nor FlowEscapeOff

	flows struct {
		sync.RWMutex
		m map[netip.AddrPort]*flowState
	}
	last atomic.Pointer[flowState] // the most recently used state, to skip the map

	idle atomic.Bool   // the watcher sleeps until wake
	wake chan struct{} // capacity 1

	// nudgedAt is when an escape last sent other peers an initiation;
	// watcher goroutine only.
	nudgedAt time.Time

	// peerCache maps endpoints to peer keys; watcher goroutine only.
	peerCache struct {
		at   time.Time
		byEP map[netip.AddrPort][]feature.Key
	}
}

// flowState is one destination endpoint. The stamps are set on packet
// goroutines; w belongs to the watcher goroutine.
type flowState struct {
	addr netip.AddrPort
	// seq orders events; data, init and recv hold the seq of the latest
	// data batch sent, initiation sent and datagram received, so the
	// watcher knows whether a send came after the last answer even when
	// both fell between two samples.
	seq                    atomic.Uint64
	data, init, recv, resp atomic.Uint64
	// path measures the round trip and judges the data's silence.
	path feature.Path
	// initAt (mono) and inits (since the last answer) time an initiation
	// to its response; two outstanding make the sample ambiguous.
	initAt atomic.Int64
	inits  atomic.Int32
	// Flags the watcher swaps to false each sample: anything heard, data
	// heard, anything sent (keepalives too).
	heard, heardData, sent atomic.Bool
	w                      flowWatch
}

// flag sets b, writing only when it was clear.
func flag(b *atomic.Bool) {
	if !b.Load() {
		b.Store(true)
	}
}

// stamp records an event of one kind in st's order.
func (st *flowState) stamp(kind *atomic.Uint64) {
	v := st.seq.Add(1)
	for {
		old := kind.Load()
		if old >= v || kind.CompareAndSwap(old, v) {
			return
		}
	}
}

// New builds the feature; gateway is true for a device that provisions
// peers on first contact (a JIT provider): clients find it at its port,
// so it must never move.
func New(host feature.Host, cfg Config, gateway bool) *FlowEscape {
	f := &FlowEscape{host: host, cfg: cfg.withDefaults(), wake: make(chan struct{}, 1)}
	if gateway {
		f.cfg.FlowEscapeOff = true
	}
	f.flows.m = make(map[netip.AddrPort]*flowState)
	f.updateActive()
	if !f.cfg.FlowEscapeOff {
		host.Go(f.run)
	}
	return f
}

// Name is the feature's name in logs.
func (*FlowEscape) Name() string { return "flowescape" }

// Watching reports whether flow escape watches the flows now: not off by
// config, by UAPI, nor by a fixed listen port.
func (f *FlowEscape) Watching() bool { return f.active.Load() }

func (f *FlowEscape) updateActive() {
	f.active.Store(!f.cfg.FlowEscapeOff && !f.fixedPort.Load() && !f.runtimeOff.Load())
}

// Configured follows the listen port of every transaction that applied: a
// fixed one turns flow escape off (a server: its port is its address), 0
// (random) lets it run.
func (f *FlowEscape) Configured(c feature.Change) {
	if c.Err != nil {
		return
	}
	for _, l := range c.Set.Device {
		if l.Key != "listen_port" {
			continue
		}
		if port, err := strconv.ParseUint(l.Value, 10, 16); err == nil {
			f.fixedPort.Store(port != 0)
			f.updateActive()
		}
	}
}

// ReceiveTypes selects every message type, unless flow escape is off.
func (f *FlowEscape) ReceiveTypes() uint8 {
	if f.cfg.FlowEscapeOff {
		return 0
	}
	return conn.TypeMask(conn.MessageInitiation, conn.MessageResponse, conn.MessageCookieReply, conn.MessageTransport)
}

// OnReceive stamps a datagram heard from a tracked endpoint. Any type
// counts: a cookie reply, too, says the far end is alive.
func (f *FlowEscape) OnReceive(p []byte, ep wgconn.Endpoint) conn.Verdict {
	if !f.active.Load() {
		return conn.Pass
	}
	st := f.lookup(ep, false)
	if st == nil {
		return conn.Pass
	}
	flag(&st.heard)
	if p[0] == conn.MessageTransport && len(p) > keepaliveSize {
		flag(&st.heardData)
	}
	// While nothing was sent since the last answer, another answer
	// changes nothing the watcher looks at: skip the write.
	if st.recv.Load() != st.seq.Load() {
		if p[0] == conn.MessageResponse {
			if st.inits.Swap(0) == 1 {
				st.path.RTT.Sample(time.Duration(mono.Now() - st.initAt.Load()))
			}
			st.stamp(&st.resp)
		}
		st.stamp(&st.recv)
	}
	st.path.Heard()
	if f.idle.Load() {
		f.wakeWatcher()
	}
	return conn.Pass
}

func (f *FlowEscape) wakeWatcher() {
	if f.idle.CompareAndSwap(true, false) {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// OnSend stamps initiations (sent alone) and data batches. A batch of
// keepalives only is not stamped: nothing answers a keepalive.
func (f *FlowEscape) OnSend(bufs [][]byte, ep wgconn.Endpoint) {
	if len(bufs) == 0 || !f.active.Load() {
		return
	}
	initiation, data := false, false
	switch conn.MessageType(bufs[0]) {
	case conn.MessageInitiation:
		if len(bufs) != 1 {
			return
		}
		initiation = true
	case conn.MessageTransport:
		for _, b := range bufs {
			if len(b) > keepaliveSize {
				data = true
				break
			}
		}
	default:
		return
	}
	st := f.lookup(ep, true)
	if st == nil {
		return
	}
	flag(&st.sent)
	switch {
	case initiation:
		st.initAt.Store(mono.Now())
		st.inits.Add(1)
		st.stamp(&st.init)
	case data:
		st.path.Sent()
		st.stamp(&st.data)
	default:
		// A keepalive: nothing answers it, but it keeps the endpoint in
		// use for the quiet probe; the watcher need not wake for it.
		return
	}
	if f.idle.Load() {
		f.wakeWatcher()
	}
}

// lookup finds the state for ep's destination, creating it when asked
// and room is left.
func (f *FlowEscape) lookup(ep wgconn.Endpoint, create bool) *flowState {
	addr := conn.DstAddrPort(ep)
	if !addr.IsValid() {
		return nil
	}
	if st := f.last.Load(); st != nil && st.addr == addr {
		return st
	}
	f.flows.RLock()
	st := f.flows.m[addr]
	f.flows.RUnlock()
	if st == nil && create {
		f.flows.Lock()
		if st = f.flows.m[addr]; st == nil && len(f.flows.m) < maxFlows {
			st = &flowState{addr: addr}
			f.flows.m[addr] = st
		}
		f.flows.Unlock()
	}
	if st != nil {
		f.last.Store(st)
	}
	return st
}

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
		st.path.Update(m) // the watcher is the path's owner
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
			heard:     st.heard.Swap(false),
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
	if force && !st.w.falseAt.IsZero() && now.Sub(st.w.falseAt) < lossyFor {
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
	falseAt     time.Time      // the last probe whose silence ended: a live, lossy path
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
			w.falseAt = now // a doubt that was false: a lossy path
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

// Keys is wghooks_flow_escape=auto|off: flow escape on (while the listen
// port is random) or off, at run time.
func (f *FlowEscape) Keys() []feature.ExtKey {
	return []feature.ExtKey{{
		Name:     "wghooks_flow_escape",
		Doc:      "auto|off: move to a new source port when a peer behind a load balancer stops answering (auto: only while listen_port is random)",
		Validate: feature.ValidateOneOf("auto", "off"),
		ApplyDevice: func(v string) error {
			f.runtimeOff.Store(v == "off")
			f.updateActive()
			return nil
		},
	}}
}

// GetLines reports wghooks_flow_escape.
func (f *FlowEscape) GetLines() []uapi.Line {
	v := "auto"
	if f.cfg.FlowEscapeOff || f.runtimeOff.Load() {
		v = "off"
	}
	return []uapi.Line{{Key: "wghooks_flow_escape", Value: v}}
}

// Package endpoints is wghooks' endpoints that heal: hostname endpoints
// resolved and re-resolved by the device, failover between their
// addresses driven by WireGuard's own messages, and source addresses that
// follow the routes.
//
// A peer's endpoint may be a hostname ("vpn.example.com:51820", set with
// SetHost (the device's SetEndpointHost), Config.Hosts or the UAPI key
// wghooks_endpoint). The device keeps the name, resolves it on its own
// goroutine (never on a packet path), and treats every A and AAAA record
// as a candidate address, ordered for happy eyeballs (RFC 8305: IPv6
// first, families alternating).
// The address in use is upstream's ordinary endpoint, so `wg show` prints
// it as usual.
//
//  1. Resolution: at start, when the answer's TTL runs out (clamped to
//     [MinTTL, MaxTTL]), and at once (at most every 5 s) when the address
//     in use stops answering. When the address in use leaves the answer,
//     the peer moves to the first candidate.
//  2. Failover by WireGuard itself, no ICMP (failover.go): every handshake
//     initiation to a hostname peer is also sent, as an exact copy, to the
//     other candidates, staggered by Stagger, until a response arrives; a
//     copy that follows an unanswered initiation (upstream retries every
//     5 s) leaves at once. The responder answers the first copy to reach
//     it (it drops the others as replays), and upstream roams the peer to
//     the address the response came from.
//  3. Traffic without replies: when data has gone out for ReplyTimeout
//     with nothing heard back, the session's packets (and keepalives sent
//     every Stagger) are copied to the next candidate, one candidate per
//     Stagger; the first authenticated reply roams the peer there.
//  4. Fail-back: while a peer is on IPv4 and has an IPv6 candidate, its
//     next initiation goes to IPv6 first, every FailbackInterval; the
//     interval doubles (up to 10 min) each time the peer has to leave IPv6
//     again, so a flaky path cannot make it flap.
//
// Source addresses (srccache.go) are the other half: replies leave from
// the local address the peer contacted, and a route or address change
// resets that choice.
package endpoints

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/dnsresolver"
	"github.com/wghooks/wghooks/uapi"

	"github.com/wghooks/wghooks/internal/mono"
)

// Config configures endpoints that heal. The zero value works.
type Config struct {
	// Resolver resolves hostname endpoints. Default: dnsresolver.Resolver,
	// a DNS client over the name servers of /etc/resolv.conf that reports
	// TTLs, falling back to the system resolver.
	Resolver hooks.Resolver

	// Hosts are hostname endpoints ("host:port") of peers by public key,
	// applied when the peer is configured (now or later). Default: none.
	Hosts map[feature.Key]string

	// MinTTL is the floor of the re-resolution interval, whatever the TTL.
	// Default 10 s.
	MinTTL time.Duration

	// MaxTTL is the ceiling of the re-resolution interval: a name is asked
	// again at least this often, whatever its TTL. Default 5 min.
	MaxTTL time.Duration

	// UnknownTTL is used when the resolver reports no TTL (then clamped to
	// [MinTTL, MaxTTL]). Default 1 min.
	UnknownTTL time.Duration

	// ResolveTimeout bounds one resolution. Default 5 s.
	ResolveTimeout time.Duration

	// Stagger is the delay between copies to successive candidates (RFC
	// 8305's "connection attempt delay"); it grows to twice the measured
	// handshake round trip when that is longer, up to 2 s. Default 250 ms.
	Stagger time.Duration

	// ReplyTimeout caps how long data may go out to a hostname peer with
	// nothing coming back before it is probed: the measured round-trip
	// timeout (feature.RTT) is used when shorter. Default 1 s.
	ReplyTimeout time.Duration

	// ProbeInterval is how long a hostname peer that only receives, or
	// only sends keepalives, may hear nothing before it is probed with a
	// handshake: at most one extra handshake per interval, only while
	// the peer is in use. Negative: never. Default 15 s.
	ProbeInterval time.Duration

	// FailbackInterval is how often a peer that left IPv6 tries it again.
	// It doubles each time the peer has to leave IPv6 again, up to 10 min,
	// and returns to this value after 10 min on IPv6. Default 30 s.
	FailbackInterval time.Duration

	// NoRouteWatch stops watching route and address changes (Linux
	// netlink), which otherwise reset cached source addresses. Default:
	// watching.
	NoRouteWatch bool
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MinTTL, defaultMinTTL)
	def(&c.MaxTTL, defaultMaxTTL)
	if c.MaxTTL < c.MinTTL {
		c.MaxTTL = c.MinTTL
	}
	def(&c.UnknownTTL, defaultUnknownTTL)
	def(&c.ResolveTimeout, defaultResolveTimeout)
	def(&c.Stagger, defaultStagger)
	def(&c.ReplyTimeout, defaultReplyTimeout)
	def(&c.FailbackInterval, defaultFailbackInterval)
	if c.ProbeInterval == 0 {
		c.ProbeInterval = defaultProbeInterval
	}
	if c.Resolver == nil {
		c.Resolver = &dnsresolver.Resolver{}
	}
	return c
}

// Endpoints is the healing-endpoints feature. Its zero value only lists
// its keys (Keys); New builds one that works.
type Endpoints struct {
	feature.Base
	host feature.Host
	c    *feature.Counters
	cfg  Config

	ctx    context.Context // cancelled when the device closes
	cancel context.CancelFunc

	// active counts hostname peers: zero keeps the packet hooks at one
	// atomic load.
	active atomic.Int32

	// tab maps indices and addresses to hostname peers; copy on write,
	// read lock-free on the packet paths.
	tab   atomic.Pointer[peerTable]
	tabMu sync.Mutex // serializes writers of tab

	// mu guards peers and pending. Lock order: mu, then hostPeer.mu, then
	// tabMu.
	mu      sync.Mutex
	peers   map[feature.Key]*hostPeer
	pending map[feature.Key]hostPort // waiting for the peer to exist

	// clock is mono.Now() as of the monitor's last tick (20 ms while
	// there are hostname peers): the packet paths read it instead of the
	// clock, which costs ~120 ns a read where there is no vDSO.
	clock atomic.Int64

	jobs chan copyJob  // to the copy sender goroutine
	kick chan struct{} // wakes the monitor

	src *sourceReset // srccache.go
}

// New builds the feature on host and starts its goroutines (host.Go):
// the monitor, the copy sender and, on Linux, the route watcher. It fails,
// having started nothing, when a hostname in cfg.Hosts does not parse.
func New(host feature.Host, cfg Config) (*Endpoints, error) {
	e := &Endpoints{
		host:    host,
		c:       host.Counters(),
		cfg:     cfg.withDefaults(),
		peers:   map[feature.Key]*hostPeer{},
		pending: map[feature.Key]hostPort{},
		jobs:    make(chan copyJob, 256),
		kick:    make(chan struct{}, 1),
	}
	for pk, s := range e.cfg.Hosts {
		hp, err := parseHostPort(s)
		if err != nil {
			return nil, fmt.Errorf("failed to configure endpoint of %s: %w", feature.ShortKey(pk), err)
		}
		e.pending[pk] = hp
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.tab.Store(&peerTable{})
	e.src = newSourceReset(e)
	host.Go(e.monitor)
	host.Go(e.copySender)
	if err := e.src.start(); err != nil {
		host.Errorf("failed to watch routes, source addresses reset only on demand: %v", err)
	}
	return e, nil
}

// Name is the feature's name in logs.
func (*Endpoints) Name() string { return "endpoints" }

// Close cancels resolutions under way and stops the route watcher; the
// goroutines end with the host's Done.
func (e *Endpoints) Close() {
	e.cancel()
	e.src.close()
}

// coarseNow is the packet paths' clock: the monitor's last tick.
func (e *Endpoints) coarseNow() int64 {
	if c := e.clock.Load(); c != 0 {
		return c
	}
	return mono.Now()
}

func (e *Endpoints) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// hostPeer is one peer with a hostname endpoint.
type hostPeer struct {
	pk   feature.Key
	name string // shortKey, for log lines
	mac1 wgdevice.CookieChecker

	// Packet-path state, atomics only. Times are coarseNow() nanoseconds.
	rxAt     atomic.Int64 // last datagram from the peer (response, cookie, data)
	txAt     atomic.Int64 // last data or keepalive sent to the peer
	dataRxAt atomic.Int64 // last data (not a keepalive) from the peer
	path     feature.Path // silence against the measured round trip
	suspect  atomic.Bool  // replies stopped: copies go to other candidates
	lastCopy atomic.Int64 // last data copy queued, for rate limiting
	dst      atomic.Pointer[epBox]

	mu         sync.Mutex     // guards everything below
	upstream   *wgdevice.Peer // the peer object the name was set on
	hp         hostPort
	fromConfig bool // from Config.Hosts: survives the peer's removal
	cands      []candidate
	local      indexRing // our indices of this peer's sessions
	remote     indexRing // the peer's indices
	init       initiation
	rtt        time.Duration

	resolving    bool
	resolveAt    time.Time
	lastForced   time.Time
	resolveFails int
	resolvedAt   time.Time
	ttl          time.Duration
	lastErr      string

	suspectSince time.Time
	probe        probeState // probe.go
	nextNudge    time.Time
	cursor       int // next candidate for copies while suspect

	failbackEvery time.Duration
	nextFailback  time.Time
	v6Since       time.Time // since when the peer is on IPv6
	failovers     uint64
}

// candidate is one resolved address of a hostname peer.
type candidate struct {
	addr     netip.AddrPort
	ep       wgconn.Endpoint // parsed by the bind
	failedAt time.Time       // a send to it failed (no route)
}

// initiation is the latest handshake initiation sent to a hostname peer.
type initiation struct {
	gen      uint64
	idx      uint32
	sentAt   time.Time
	sentMono int64 // sentAt on the mono clock, against rxAt
	dst      netip.AddrPort
	answered bool
	answerBy netip.AddrPort
	copied   bool // a copy left for another candidate: no RTT sample (Karn)
	probe    bool // sent as a probe: its copies wait for the probe to fail
}

// epBox holds the endpoint data last went to.
type epBox struct {
	ep   wgconn.Endpoint
	addr netip.AddrPort
}

type indexRing struct {
	idx [6]uint32
	n   int
}

// add records i and returns the index it pushed out (0 for none).
func (r *indexRing) add(i uint32) (evicted uint32) {
	for _, v := range r.idx {
		if v == i {
			return 0
		}
	}
	slot := r.n % len(r.idx)
	evicted = r.idx[slot]
	r.idx[slot] = i
	r.n++
	return evicted
}

// peerTable is the packet paths' read-only view; replaced whole.
type peerTable struct {
	local  map[uint32]*hostPeer
	remote map[uint32]*hostPeer
	byAddr map[netip.AddrPort][]*hostPeer
	all    []*hostPeer
}

// updateTable applies fn to a copy of the table and publishes it.
func (e *Endpoints) updateTable(fn func(t *peerTable)) {
	e.tabMu.Lock()
	defer e.tabMu.Unlock()
	old := e.tab.Load()
	t := &peerTable{
		local:  make(map[uint32]*hostPeer, len(old.local)+1),
		remote: make(map[uint32]*hostPeer, len(old.remote)+1),
		byAddr: make(map[netip.AddrPort][]*hostPeer, len(old.byAddr)),
		all:    append([]*hostPeer(nil), old.all...),
	}
	for k, v := range old.local {
		t.local[k] = v
	}
	for k, v := range old.remote {
		t.remote[k] = v
	}
	for k, v := range old.byAddr {
		t.byAddr[k] = v
	}
	fn(t)
	e.tab.Store(t)
	e.active.Store(int32(len(t.all)))
}

// addrsChanged re-indexes hp's candidate addresses. Called with hp.mu held.
func (e *Endpoints) addrsChangedLocked(hp *hostPeer) {
	addrs := make([]netip.AddrPort, 0, len(hp.cands))
	for _, c := range hp.cands {
		addrs = append(addrs, c.addr)
	}
	e.updateTable(func(t *peerTable) {
		for a, list := range t.byAddr {
			t.byAddr[a] = without(list, hp)
			if len(t.byAddr[a]) == 0 {
				delete(t.byAddr, a)
			}
		}
		for _, a := range addrs {
			t.byAddr[a] = append(t.byAddr[a], hp)
		}
	})
}

func without(list []*hostPeer, hp *hostPeer) []*hostPeer {
	out := make([]*hostPeer, 0, len(list))
	for _, x := range list {
		if x != hp {
			out = append(out, x)
		}
	}
	return out
}

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

// Status describes a hostname peer, for the CLI and tests.
type Status struct {
	Host        string           // "host:port" as configured
	Candidates  []netip.AddrPort // happy-eyeballs order
	InUse       netip.AddrPort   // where data last went (zero before any)
	ResolvedAt  time.Time        // last successful resolution
	NextResolve time.Time
	TTL         time.Duration
	Error       string        // last resolution error, "" after a success
	Failovers   uint64        // times the peer moved to another candidate
	Suspect     bool          // replies stopped; other candidates being tried
	SRTT        time.Duration // smoothed round trip (0: no sample yet)
	RTTVar      time.Duration // its variation
	Probes      uint64        // probe handshakes sent (silence, keepalive-only)
}

// Status returns the hostname endpoint state of the peer with public key
// pk; ok is false when it has no hostname endpoint.
func (e *Endpoints) Status(pk feature.Key) (st Status, ok bool) {
	e.mu.Lock()
	hp := e.peers[pk]
	e.mu.Unlock()
	if hp == nil {
		return st, false
	}
	hp.mu.Lock()
	defer hp.mu.Unlock()
	st.Host = hp.hp.String()
	for _, c := range hp.cands {
		st.Candidates = append(st.Candidates, c.addr)
	}
	if b := hp.dst.Load(); b != nil {
		st.InUse = b.addr
	}
	st.ResolvedAt, st.NextResolve, st.TTL, st.Error = hp.resolvedAt, hp.resolveAt, hp.ttl, hp.lastErr
	st.Failovers = hp.failovers
	st.Suspect = hp.suspect.Load()
	st.SRTT, st.RTTVar, _ = hp.path.RTT.Get()
	st.Probes = hp.probe.sent
	return st, true
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

// Keys are the feature's UAPI extension keys: wghooks_endpoint here,
// wghooks_reset_source in srccache.go. They work on a zero value.
func (e *Endpoints) Keys() []feature.ExtKey {
	return append([]feature.ExtKey{{
		Name: "wghooks_endpoint",
		Peer: true,
		Doc:  "hostname endpoint host:port kept and re-resolved by the device (empty: remove)",
		Validate: func(v string) error {
			if v == "" {
				return nil
			}
			_, err := parseHostPort(v)
			return err
		},
		ApplyPeer: func(pk feature.Key, v string) error {
			if err := e.setHost(pk, v, false); err != nil {
				return uapi.Errorf(uapi.ErrnoInvalid, "%w", err)
			}
			return nil
		},
	}}, e.sourceKeys()...)
}

// PeerGetLines are a hostname peer's lines in a get reply.
func (e *Endpoints) PeerGetLines(pk feature.Key) []uapi.Line {
	st, ok := e.Status(pk)
	if !ok {
		return nil
	}
	out := []uapi.Line{{Key: "wghooks_endpoint", Value: st.Host}}
	if len(st.Candidates) > 0 {
		list := make([]string, len(st.Candidates))
		for i, c := range st.Candidates {
			list[i] = c.String()
		}
		out = append(out, uapi.Line{Key: "wghooks_endpoint_candidates", Value: strings.Join(list, ",")})
	}
	if !st.ResolvedAt.IsZero() {
		out = append(out, uapi.Line{Key: "wghooks_endpoint_ttl_sec", Value: fmt.Sprint(int64(st.TTL / time.Second))})
	}
	if st.Error != "" {
		out = append(out, uapi.Line{Key: "wghooks_endpoint_error", Value: strings.ReplaceAll(st.Error, "=", ":")})
	}
	out = append(out, uapi.Line{Key: "wghooks_endpoint_failovers", Value: fmt.Sprint(st.Failovers)})
	return out
}

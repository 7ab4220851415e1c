package jit

// The outbound side of just-in-time peers (Config.Outbound): a packet
// from the TUN to an address no installed peer covers, which upstream
// would drop without a word, asks the provider which peer holds that
// address (hooks.AddrProvider) and installs it, so a gateway can reach a
// client first, also one evicted a moment ago. The flow, in order:
//
//  1. filter (a tun.ReadFilter: upstream's TUN reader goroutine, never
//     blocks) reads each packet's destination. One covered by an
//     installed peer's allowed IPs (routes, kept from every set
//     transaction) passes untouched: a map look-up per prefix length in
//     use, none for a repeat of the last covered destination.
//  2. An uncovered unicast destination that is neither in the negative
//     cache nor being looked up is queued for a lookup (a bounded queue:
//     full means the packet goes on to upstream, which drops it), and the
//     packet is held. Packets to it while its lookup is under way are
//     held too, a few per destination and a few hundred in all; packets
//     to a destination in the negative cache go on to upstream. At most
//     maxOutboundDsts destinations are remembered: a scan of many
//     addresses costs at most that many lookups per negative-cache
//     period.
//  3. One goroutine takes queued destinations and starts a lookup for
//     each within the JIT's MaxLookups slots (shared with inbound
//     lookups), under the lookup timeout: a slow or dead provider holds a
//     slot, never the TUN reader.
//  4. The answer must name a key, pass the checks every answer passes,
//     hold the destination, carry an endpoint (without one the peer
//     cannot be reached first), not name a static peer nor a key the
//     provider called unknown a moment ago, and not take a static peer's
//     allowed IPs. It is installed as an inbound answer is, through
//     applyAnswer (just in time: evicted and revalidated like any
//     just-in-time peer).
//  5. The held packets go back to upstream's TUN reader
//     (tun.UpDelay.InjectRead), at most HoldTimeout after they arrived:
//     upstream finds the peer, initiates the handshake itself and sends
//     them once it completes. A failed lookup drops them, as upstream
//     would have.
//
// Lock order: jit.mu and outbound.mu are never held together; routes.mu
// is a leaf.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/uapi"
)

const (
	outboundQueueLen = 256
	maxOutboundDsts  = 4096 // destinations looked up or negatively cached
	maxHeldPerDst    = 4
	maxHeldTotal     = 256
)

// outbound is the outbound side of the jit feature.
type outbound struct {
	j      *JIT
	ap     hooks.AddrProvider
	routes routeSet
	queue  chan netip.Addr
	off    atomic.Bool // the provider said it cannot look up addresses

	// lastCovered is the last destination found covered, at routes
	// generation lastGen. Only the TUN reader goroutine touches them.
	lastCovered netip.Addr
	lastGen     uint64

	mu        sync.Mutex
	dsts      map[netip.Addr]*outDst
	held      int       // packets held over all destinations
	nextPrune time.Time // when a full dsts may have room again
}

// outDst is one destination being looked up or refused for a while.
type outDst struct {
	until time.Time // no new lookup before this
	busy  bool      // a lookup is queued or under way
	pkts  []heldPacket
}

type heldPacket struct {
	b  []byte
	at time.Time
}

// newOutbound starts the outbound side, or logs why it stays off.
func newOutbound(j *JIT) *outbound {
	ap, ok := j.cfg.Provider.(hooks.AddrProvider)
	if !ok {
		j.host.Errorf("jit: outbound side off: the provider cannot look up addresses (%T does not implement hooks.AddrProvider)", j.cfg.Provider)
		return nil
	}
	o := &outbound{
		j:     j,
		ap:    ap,
		queue: make(chan netip.Addr, outboundQueueLen),
		dsts:  make(map[netip.Addr]*outDst),
	}
	o.routes.init()
	j.host.TUN().SetReadFilter(o.filter)
	j.host.Go(o.loop)
	return o
}

// filter runs on upstream's TUN reader goroutine for each packet read. It
// takes only outbound.mu, and that only for uncovered destinations.
func (o *outbound) filter(pkt []byte) bool {
	dst, ok := packetDst(pkt)
	if !ok || !dst.IsGlobalUnicast() || dst.Is4In6() {
		return true
	}
	gen := o.routes.generation()
	if dst == o.lastCovered && gen == o.lastGen {
		return true
	}
	if o.routes.covers(dst) {
		o.lastCovered, o.lastGen = dst, gen
		return true
	}
	if o.off.Load() {
		return true
	}
	return !o.miss(dst, pkt)
}

// packetDst reads an IP packet's destination address.
func packetDst(pkt []byte) (netip.Addr, bool) {
	if len(pkt) == 0 {
		return netip.Addr{}, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) >= 20 {
			return netip.AddrFrom4([4]byte(pkt[16:20])), true
		}
	case 6:
		if len(pkt) >= 40 {
			return netip.AddrFrom16([16]byte(pkt[24:40])), true
		}
	}
	return netip.Addr{}, false
}

// miss handles a packet to an uncovered destination and reports whether
// it was held (else it goes on to upstream, which drops it).
func (o *outbound) miss(dst netip.Addr, pkt []byte) bool {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	st := o.dsts[dst]
	if st == nil {
		if len(o.dsts) >= maxOutboundDsts && !o.pruneLocked(now) {
			return false
		}
		st = &outDst{}
		o.dsts[dst] = st
	}
	switch {
	case st.busy:
		return o.holdLocked(st, pkt, now)
	case now.Before(st.until):
		return false
	}
	select {
	case o.queue <- dst:
	default:
		return false
	}
	st.busy = true
	return o.holdLocked(st, pkt, now)
}

func (o *outbound) holdLocked(st *outDst, pkt []byte, now time.Time) bool {
	if len(st.pkts) >= maxHeldPerDst || o.held >= maxHeldTotal {
		return false
	}
	st.pkts = append(st.pkts, heldPacket{b: append([]byte(nil), pkt...), at: now})
	o.held++
	return true
}

// pruneLocked forgets destinations neither busy nor refused any more, and
// reports whether there is room for another. While none can have expired
// it costs nothing: a scan of many addresses meets a full table (so at
// most maxOutboundDsts distinct destinations are looked up per negative
// cache period), not a walk of it per packet.
func (o *outbound) pruneLocked(now time.Time) bool {
	if now.Before(o.nextPrune) {
		return false
	}
	next := now.Add(o.j.cfg.ErrorRetry)
	for a, st := range o.dsts {
		switch {
		case st.busy:
		case !now.Before(st.until):
			delete(o.dsts, a)
		case st.until.Before(next):
			next = st.until
		}
	}
	if len(o.dsts) >= maxOutboundDsts {
		o.nextPrune = next
		return false
	}
	return true
}

// loop starts a lookup for each queued destination, within the JIT's
// lookup slots.
func (o *outbound) loop() {
	h := o.j.host
	for {
		select {
		case dst := <-o.queue:
			select {
			case o.j.slots <- struct{}{}:
			case <-h.Done():
				return
			}
			h.Go(func() {
				defer func() { <-o.j.slots }()
				o.resolve(dst)
			})
		case <-h.Done():
			return
		}
	}
}

// resolve looks dst up, installs the peer that holds it, and releases the
// packets held for it.
func (o *outbound) resolve(dst netip.Addr) {
	j := o.j
	started := time.Now()
	cfg, err := o.lookup(dst)
	key := feature.Key(cfg.PublicKey)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		if !o.off.Swap(true) {
			j.host.Errorf("jit: outbound side off: %v", err)
		}
		o.release(dst, false, j.cfg.NegativeTTL)
		return
	case errors.Is(err, hooks.ErrUnknownPeer):
		j.host.Verbosef("jit: outbound packet to %s dropped: no peer holds it", dst)
		o.release(dst, false, j.cfg.NegativeTTL)
		return
	case err != nil:
		j.host.Errorf("jit: outbound packet to %s dropped: failed to look up the address: %v", dst, err)
		o.release(dst, false, j.cfg.ErrorRetry)
		return
	}
	if err := o.admit(dst, key, cfg, started); err != nil {
		j.host.Errorf("jit: outbound packet to %s dropped: %v", dst, err)
		j.event(hooks.PeerEvent{Kind: hooks.PeerLookupFailed, Key: hooks.PublicKey(key), Err: err})
		o.release(dst, false, j.cfg.NegativeTTL)
		return
	}
	if j.isJIT(key) && o.routes.covers(dst) {
		// Installed meanwhile (by this peer's other address, or its own
		// initiation): nothing to do but send.
		o.release(dst, true, 0)
		return
	}
	if !j.installLooked(key, cfg, fmt.Sprintf("outbound packet to %s dropped", dst)) {
		o.release(dst, false, j.cfg.ErrorRetry)
		return
	}
	j.c.OutboundInstalls.Add(1)
	lat := o.release(dst, true, 0)
	j.host.Verbosef("jit: %s installed for outbound packets to %s (endpoint %s) in %v",
		feature.ShortKey(key), dst, cfg.Endpoint, lat.Round(time.Microsecond))
	j.event(hooks.PeerEvent{Kind: hooks.PeerInstalled, Key: hooks.PublicKey(key), Latency: lat, Reason: "outbound"})
	if cfg.PersistentKeepalive > 0 {
		j.setKeepalive(key, cfg.PersistentKeepalive)
	}
}

// lookup asks the provider about dst under the lookup timeout, counted
// like key lookups.
func (o *outbound) lookup(dst netip.Addr) (hooks.PeerConfig, error) {
	j := o.j
	start := time.Now()
	cfg, err := timedCall(j, func(ctx context.Context) (hooks.PeerConfig, error) {
		return o.ap.LookupAddr(ctx, dst)
	})
	j.c.ProviderLookups.Add(1)
	j.c.ProviderLatencyNanos.Add(uint64(time.Since(start)))
	if err != nil && !errors.Is(err, hooks.ErrUnknownPeer) {
		j.c.ProviderErrors.Add(1)
	}
	return cfg, err
}

// errNoEndpoint marks an answer without an endpoint.
var errNoEndpoint = errors.New("the answer has no endpoint, so the peer cannot be reached first")

// checkOutboundAnswer is the pure part of admit: what any answer for dst
// must hold.
func checkOutboundAnswer(dst netip.Addr, cfg hooks.PeerConfig) error {
	if cfg.PublicKey == (hooks.PublicKey{}) {
		return fmt.Errorf("failed to install a peer for %s: the answer names no public key", dst)
	}
	if err := cfg.Validate(cfg.PublicKey); err != nil {
		return fmt.Errorf("failed to install a peer for %s: %w", dst, err)
	}
	if !cfg.Endpoint.IsValid() {
		return fmt.Errorf("failed to install peer %s for %s: %w", feature.ShortKey(feature.Key(cfg.PublicKey)), dst, errNoEndpoint)
	}
	for _, p := range cfg.AllowedIPs {
		if p.Masked().Contains(dst) {
			return nil
		}
	}
	return fmt.Errorf("failed to install peer %s for %s: its allowed IPs %v do not hold it", feature.ShortKey(feature.Key(cfg.PublicKey)), dst, cfg.AllowedIPs)
}

// admit checks an answer against the answer rules and the device's state.
// applyAnswer then applies the rules every answer follows (static peers'
// keys and allowed IPs, the cap).
func (o *outbound) admit(dst netip.Addr, key feature.Key, cfg hooks.PeerConfig, started time.Time) error {
	j := o.j
	if err := checkOutboundAnswer(dst, cfg); err != nil {
		return err
	}
	if j.host.HasPeer(key) && !j.isJIT(key) {
		return fmt.Errorf("failed to install peer %s for %s: it is a static peer", feature.ShortKey(key), dst)
	}
	if j.removedSince(key, started) {
		return fmt.Errorf("failed to install peer %s for %s: removed while it was being looked up", feature.ShortKey(key), dst)
	}
	j.mu.Lock()
	until, refused := j.negative[key]
	j.mu.Unlock()
	if refused && time.Now().Before(until) {
		return fmt.Errorf("failed to install peer %s for %s: the provider called its key unknown a moment ago", feature.ShortKey(key), dst)
	}
	return nil
}

// release ends dst's lookup: on success its held packets go back to the
// TUN reader (those younger than HoldTimeout) and dst is forgotten;
// otherwise they are dropped and dst is refused for retry. It returns the
// age of the oldest packet sent.
func (o *outbound) release(dst netip.Addr, ok bool, retry time.Duration) time.Duration {
	now := time.Now()
	o.mu.Lock()
	var pkts []heldPacket
	if st := o.dsts[dst]; st != nil {
		pkts = st.pkts
		o.held -= len(pkts)
		st.pkts, st.busy = nil, false
		if ok {
			delete(o.dsts, dst)
		} else {
			st.until = now.Add(retry)
		}
	}
	o.mu.Unlock()
	if !ok {
		return 0
	}
	var oldest time.Duration
	for _, p := range pkts {
		age := now.Sub(p.at)
		if age > o.j.cfg.HoldTimeout || !o.j.host.TUN().InjectRead(p.b) {
			continue
		}
		oldest = max(oldest, age)
	}
	return oldest
}

// routeSet is the allowed IPs of every peer the device holds, kept from
// the set transactions that configure them with upstream's rules (an
// exact prefix moves to the peer that names it last), so the TUN reader
// can tell a destination upstream would drop. A transaction that failed
// half-way in upstream (our own validation makes that rare) is followed
// whole: then a destination may look covered when it is not (the packet
// is dropped as before) or the reverse (a lookup installs the peer again).
type routeSet struct {
	mu     sync.RWMutex
	owner  map[netip.Prefix]feature.Key
	byPeer map[feature.Key]map[netip.Prefix]struct{}
	// lens are the prefix lengths in use, longest first, per family
	// (0: IPv4, 1: IPv6); count how many prefixes have each length.
	lens  [2][]int
	count [2][129]int
	gen   atomic.Uint64 // bumped by every change
}

func (r *routeSet) init() {
	r.owner = make(map[netip.Prefix]feature.Key)
	r.byPeer = make(map[feature.Key]map[netip.Prefix]struct{})
}

func (r *routeSet) generation() uint64 { return r.gen.Load() }

func family(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// covers reports whether some peer's allowed IPs hold a.
func (r *routeSet) covers(a netip.Addr) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, bits := range r.lens[family(a)] {
		p, _ := a.Prefix(bits)
		if _, ok := r.owner[p]; ok {
			return true
		}
	}
	return false
}

// apply follows one set transaction after upstream applied it; has says
// which peers upstream holds afterwards.
func (r *routeSet) apply(set *uapi.Set, has func(feature.Key) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.gen.Add(1)
	if set.ReplacePeers {
		for k := range r.byPeer {
			r.dropPeerLocked(k)
		}
	}
	for _, p := range set.Peers {
		key := feature.Key(p.PublicKey)
		if p.Remove {
			r.dropPeerLocked(key)
			continue
		}
		eachAllowedIPChange(p, func(c allowedIPChange) {
			switch {
			case c.replace:
				r.dropPeerLocked(key)
			case c.remove:
				if owner, ok := r.owner[c.prefix]; ok && owner == key {
					r.delLocked(c.prefix)
				}
			default:
				r.addLocked(c.prefix, key)
			}
		})
	}
	// A peer upstream did not create (update_only, the device's own key)
	// routes nothing.
	for _, p := range set.Peers {
		if key := feature.Key(p.PublicKey); !has(key) {
			r.dropPeerLocked(key)
		}
	}
}

func (r *routeSet) addLocked(p netip.Prefix, key feature.Key) {
	if old, ok := r.owner[p]; ok {
		if old == key {
			return
		}
		r.delLocked(p)
	}
	r.owner[p] = key
	m := r.byPeer[key]
	if m == nil {
		m = make(map[netip.Prefix]struct{})
		r.byPeer[key] = m
	}
	m[p] = struct{}{}
	f := family(p.Addr())
	if r.count[f][p.Bits()]++; r.count[f][p.Bits()] == 1 {
		r.relenLocked(f)
	}
}

func (r *routeSet) delLocked(p netip.Prefix) {
	key, ok := r.owner[p]
	if !ok {
		return
	}
	delete(r.owner, p)
	if m := r.byPeer[key]; m != nil {
		delete(m, p)
		if len(m) == 0 {
			delete(r.byPeer, key)
		}
	}
	f := family(p.Addr())
	if r.count[f][p.Bits()]--; r.count[f][p.Bits()] == 0 {
		r.relenLocked(f)
	}
}

func (r *routeSet) dropPeerLocked(key feature.Key) {
	for p := range r.byPeer[key] {
		r.delLocked(p)
	}
}

func (r *routeSet) relenLocked(f int) {
	r.lens[f] = r.lens[f][:0]
	for bits := 128; bits >= 0; bits-- {
		if r.count[f][bits] > 0 {
			r.lens[f] = append(r.lens[f], bits)
		}
	}
}

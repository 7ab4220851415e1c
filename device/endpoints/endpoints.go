package endpoints

// The feature's state: hostname peers, their candidates and the table
// the packet hooks read; its status and UAPI keys.

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
	"github.com/wghooks/wghooks/uapi"

	"github.com/wghooks/wghooks/internal/mono"
)

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

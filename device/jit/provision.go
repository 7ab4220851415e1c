package jit

// Just-in-time peers: a peer is installed when its first handshake
// initiation arrives, from a hooks.Provider, and answered without a
// client retransmit. The flow, in order:
//
//  1. OnReceive (receive.go; receive goroutine, never blocks) sees each initiation.
//     From a source address that recently handshook with us (a known
//     source) it passes untouched: known peers pay one map look-up, and
//     the initiation is watched until the device answers it. From a new
//     source it checks mac1, stands back while the device is under load,
//     rate-limits per source IP and over all sources (budget.go), and
//     holds a copy for the decoders.
//  2. A decoder goroutine decrypts the initiator's static key
//     (conn.Identity.Open: es). A key the device holds is re-injected at
//     once: the device authenticates it itself. Any other key is
//     authenticated (ss) and is a peer miss.
//  3. A miss keeps only the newest initiation per key, unless the
//     negative cache says the key was unknown a moment ago, and is queued
//     for the batchers (batch.go): the misses waiting are asked about
//     together (lookup.go: context, timeout, merged with any concurrent
//     ask of the same key), a lone one at once.
//  4. The peers are installed through one Host.Configure (install.go; origin "jit")
//     and marked just in time in the feature's own map; only after
//     Configure returned is each held initiation re-injected, so the
//     device answers it.
//  5. A watched initiation the device did not answer in watchAfter (a
//     known source now used by an unknown key) is decoded as in 2.
//
// Eviction, the cap and revalidation are in evict.go; the settings in
// config.go; what the feature reads from transactions and its UAPI keys
// in uapi.go.
//
// Lock order: installMu, then mu, then the core's peer set; the Sources
// lock and watch.mu are leaves. Host.Configure is called with installMu
// held, never mu: Configured takes mu for every origin.

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/ratelimiter"
	"golang.zx2c4.com/wireguard/tai64n"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
)

// JIT is the just-in-time provisioning feature.
type JIT struct {
	feature.Base
	host feature.Host
	c    *feature.Counters
	cfg  Config // with defaults; Provider nil means off

	static  staticRoutes // static peers' allowed IPs, never handed out
	limiter ratelimiter.Ratelimiter
	budget  lookupBudget // over all sources (budget.go)
	jobs    chan decodeJob
	slots   chan struct{} // one per provider call under way
	kick    chan struct{} // wakes housekeeping when something is watched
	ctx     context.Context
	cancel  context.CancelFunc

	watch watchSet
	fails failureLog // repeated failure lines, aggregated (faillog.go)

	out *outbound // nil unless Outbound is on (outbound.go)

	// installMu serializes installs so the cap holds.
	installMu sync.Mutex

	mu           sync.Mutex
	held         map[feature.Key]heldInit
	provisioning map[feature.Key]struct{}
	pending      []miss                   // misses waiting for a batcher (batch.go)
	batchers     int                      // batchers running
	restoring    map[feature.Key]struct{} // queued by a restart restore, lookup not started (restore.go)
	calls        map[feature.Key]*lookupCall
	negative     map[feature.Key]time.Time // refused until
	removed      map[feature.Key]time.Time // removal time, for in-flight lookups
	peers        map[feature.Key]*jitPeer  // installed just-in-time peers
	revalidating bool
}

// jitPeer is one installed just-in-time peer.
type jitPeer struct {
	cfg        hooks.PeerConfig
	installed  time.Time
	lastActive time.Time // latest handshake or traffic seen
	rx, tx     int64     // counters at the last look, -1 before
}

type decodeJob struct {
	pkt     [conn.MessageInitiationSize]byte
	ep      wgconn.Endpoint
	src     netip.AddrPort
	at      time.Time
	watched bool // the device already saw it and did not answer
}

type heldInit struct {
	job decodeJob
	ts  tai64n.Timestamp
}

// New builds the feature on host and starts its goroutines. Without a
// provider it only answers its keys (every peer is static).
func New(host feature.Host, cfg Config) (*JIT, error) {
	j := newJIT(host, cfg)
	if !j.enabled() {
		return j, nil
	}
	workers := min(runtime.GOMAXPROCS(0), 4)
	for i := 0; i < workers; i++ {
		host.Go(j.decodeLoop)
	}
	host.Go(j.housekeep)
	j.startWatch()
	if j.cfg.Outbound {
		j.out = newOutbound(j)
	}
	return j, nil
}

// newJIT readies the feature's state; New adds its goroutines.
func newJIT(host feature.Host, cfg Config) *JIT {
	j := &JIT{host: host, c: host.Counters(), cfg: cfg.withDefaults()}
	j.held = make(map[feature.Key]heldInit)
	j.provisioning = make(map[feature.Key]struct{})
	j.restoring = make(map[feature.Key]struct{})
	j.calls = make(map[feature.Key]*lookupCall)
	j.negative = make(map[feature.Key]time.Time)
	j.removed = make(map[feature.Key]time.Time)
	j.peers = make(map[feature.Key]*jitPeer)
	j.watch.m = make(map[uint32]decodeJob)
	j.ctx, j.cancel = context.WithCancel(context.Background())
	if j.enabled() {
		j.limiter.Init()
		j.budget.init(j.cfg.MaxLookupRate)
		j.jobs = make(chan decodeJob, decodeQueueLen)
		j.slots = make(chan struct{}, j.cfg.MaxLookups)
		j.kick = make(chan struct{}, 1)
	}
	return j
}

// Name is the feature's name in logs, the origin of its configuration
// changes and its state file section.
func (*JIT) Name() string { return "jit" }

func (j *JIT) enabled() bool { return j.cfg.Provider != nil }

// Close cancels the lookups under way.
func (j *JIT) Close() {
	j.cancel()
	if j.enabled() {
		j.limiter.Close()
	}
}

func (j *JIT) decodeLoop() {
	for {
		select {
		case job := <-j.jobs:
			j.handle(job)
		case <-j.host.Done():
			return
		}
	}
}

// handle decodes one initiation and routes it: a key the device holds
// to the device, which authenticates it itself; an unknown key, once
// authenticated, to provisioning; anything forged nowhere.
func (j *JIT) handle(job decodeJob) {
	id := j.host.Identity()
	if id == nil {
		return
	}
	began := time.Now()
	opened, err := id.Open(job.pkt[:])
	spent := time.Since(began) // in X25519 and AEAD, for the counters
	defer func() {
		j.c.InitiationsDecoded.Add(1)
		j.c.DecodeNanos.Add(uint64(spent))
	}()
	if err != nil {
		j.host.Verbosef("jit: dropped initiation from %s: %v", job.src, err)
		return
	}
	key := feature.Key(opened.Initiator)
	if j.passHeld(key, job) {
		return
	}
	// Unknown to the device: only an authenticated key may cost a lookup.
	began = time.Now()
	init, err := opened.Authenticate()
	spent += time.Since(began)
	if err != nil {
		j.host.Verbosef("jit: dropped initiation from %s: %v", job.src, err)
		return
	}
	j.mu.Lock()
	if _, busy := j.provisioning[key]; busy {
		kept := j.holdLocked(key, job, init.Timestamp)
		j.mu.Unlock()
		if kept {
			// Only a newer timestamp gets here, so replays log nothing.
			j.host.Verbosef("jit: %s initiation from %s held: its lookup is under way", feature.ShortKey(key), job.src)
		}
		return
	}
	// A client that knocks while a restart restore still has its key
	// queued is provisioned now, not after the keys ahead of it; the
	// restore skips it.
	delete(j.restoring, key)
	if j.host.HasPeer(key) {
		// Installed since passHeld looked.
		j.mu.Unlock()
		j.passToDevice(key, job)
		return
	}
	j.c.PeerMisses.Add(1)
	if until, ok := j.negative[key]; ok && time.Now().Before(until) {
		j.mu.Unlock()
		j.host.Verbosef("jit: %s refused (negative cache)", feature.ShortKey(key))
		j.event(hooks.PeerEvent{Kind: hooks.PeerRefused, Key: hooks.PublicKey(key)})
		return
	}
	if !j.holdLocked(key, job, init.Timestamp) {
		j.mu.Unlock()
		j.host.Verbosef("jit: %s dropped: %d initiations held", feature.ShortKey(key), maxHeld)
		return
	}
	j.provisioning[key] = struct{}{}
	start := j.queueMissLocked(miss{key: key, src: job.src})
	j.mu.Unlock()
	if start {
		j.host.Go(j.batchLoop)
	}
}

// passHeld hands job to the device when the key it claims is one the
// device holds and no lookup of it is under way, and says whether it did.
// The device authenticates the initiation itself (upstream checks the
// timestamp with the static-static secret it keeps per peer), so wghooks
// skips its own ss: a known peer's first contact from a new address costs
// one X25519 here, not two. A forged claim costs no lookup: the device
// drops it, and its source never becomes known (that needs an answer).
func (j *JIT) passHeld(key feature.Key, job decodeJob) bool {
	j.mu.Lock()
	_, busy := j.provisioning[key]
	if busy || !j.host.HasPeer(key) {
		j.mu.Unlock()
		return false
	}
	delete(j.restoring, key)
	j.mu.Unlock()
	j.passToDevice(key, job)
	return true
}

// passToDevice names key as the owner of job's source (it becomes known
// when the device answers) and re-injects job, unless the device already
// saw it (a watched initiation).
func (j *JIT) passToDevice(key feature.Key, job decodeJob) {
	j.host.Sources().Learn(job.src, key, time.Now())
	if !job.watched {
		j.inject(job)
	}
}

// holdLocked keeps job if it is the newest initiation from key, and says
// whether it did.
func (j *JIT) holdLocked(key feature.Key, job decodeJob, ts tai64n.Timestamp) bool {
	h, ok := j.held[key]
	if ok && !ts.After(h.ts) {
		return false
	}
	if !ok && len(j.held) >= maxHeld {
		return false
	}
	j.held[key] = heldInit{job: job, ts: ts}
	return true
}

func (j *JIT) inject(job decodeJob) {
	if err := j.host.Bind().Inject(job.pkt[:], job.ep); err != nil {
		j.host.Verbosef("jit: failed to re-inject initiation from %s: %v", job.src, err)
	}
}

// answerRefused reports an answer for key that was refused or failed to
// apply: counted as a provider error, logged after lost (what it costs),
// reported as a failed lookup.
func (j *JIT) answerRefused(key feature.Key, err error, lost string) {
	j.c.ProviderErrors.Add(1)
	j.fails.failed(j.host.Errorf, key, fmt.Sprintf("jit: %s: %v", lost, err), time.Now())
	j.event(hooks.PeerEvent{Kind: hooks.PeerLookupFailed, Key: hooks.PublicKey(key), Err: err})
}

// lookupDone ends key's provisioning and takes its held initiation, if
// one arrived meanwhile.
func (j *JIT) lookupDone(key feature.Key) (heldInit, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	h, ok := j.held[key]
	delete(j.held, key)
	delete(j.provisioning, key)
	return h, ok
}

// answerHeld re-injects a held initiation so the device answers it, then
// turns on the peer's persistent keepalive, left off by install. Turned on
// earlier, it would make upstream send at once, which without a session
// means an initiation of its own, crossing the client's; so it waits for
// the device's answer (at most a second).
func (j *JIT) answerHeld(key feature.Key, job decodeJob, keepalive time.Duration) {
	if keepalive == 0 {
		j.inject(job)
		return
	}
	sender := conn.InitiationSender(job.pkt[:])
	answered := j.watch.await(sender)
	j.inject(job)
	select {
	case <-answered:
	case <-time.After(time.Second):
	case <-j.host.Done():
		return
	}
	j.watch.forget(sender)
	j.setKeepalive(key, keepalive)
}

// setKeepalive turns on the persistent keepalive install left off.
func (j *JIT) setKeepalive(key feature.Key, every time.Duration) {
	c := feature.Config{Peers: []feature.PeerConfig{{PublicKey: key, UpdateOnly: true, Keepalive: &every}}}
	if err := j.host.Configure(j.Name(), c); err != nil {
		j.host.Errorf("jit: failed to set keepalive of %s: %v", feature.ShortKey(key), err)
	}
}

func (j *JIT) event(ev hooks.PeerEvent) {
	if f := j.cfg.OnPeerEvent; f != nil {
		f(ev)
	}
}

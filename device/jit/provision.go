package jit

// Just-in-time peers: a peer is installed when its first handshake
// initiation arrives, from a hooks.Provider, and answered without a
// client retransmit. The flow, in order:
//
//  1. onReceive (receive goroutine, never blocks) sees each initiation.
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
//     together (context, timeout, merged with any concurrent ask of the
//     same key), a lone one at once.
//  4. The peers are installed through one Host.Configure (origin "jit")
//     and marked just in time in the feature's own map; only after
//     Configure returned is each held initiation re-injected, so the
//     device answers it.
//  5. A watched initiation the device did not answer in watchAfter (a
//     known source now used by an unknown key) is decoded as in 2.
//
// Eviction, the cap and revalidation are in evict.go.
//
// Lock order: installMu, then mu, then the core's peer set; the Sources
// lock and watch.mu are leaves. Host.Configure is called with installMu
// held, never mu: Configured takes mu for every origin.

import (
	"context"
	"errors"
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
	"github.com/wghooks/wghooks/uapi"
)

// Config configures just-in-time peers (peer-miss provisioning,
// eviction, revalidation). The zero value turns the feature off.
type Config struct {
	// Provider says which peer a public key belongs to. Default (nil): no
	// just-in-time peers; an initiation from an unknown key is dropped as
	// upstream drops it, and nothing of this feature runs.
	Provider hooks.Provider

	// LookupTimeout bounds one provider lookup. Default 3 s.
	LookupTimeout time.Duration

	// NegativeTTL is how long a key the provider called unknown is refused
	// without asking again. Default 1 min.
	NegativeTTL time.Duration

	// ErrorRetry is how long after a failed lookup (error, timeout,
	// invalid answer) the same key is asked again. Default 2 s.
	ErrorRetry time.Duration

	// HoldTimeout is how long a held initiation stays worth answering;
	// older ones are dropped (their initiator has moved on to a newer one,
	// it retransmits after 5 s). Default 4 s.
	HoldTimeout time.Duration

	// IdleTimeout evicts a just-in-time peer that has had no handshake and
	// no traffic for this long. WireGuard repeats the handshake at least
	// every 3 minutes while any traffic flows, so anything above that
	// never cuts a live session. Default 10 min; negative never evicts.
	IdleTimeout time.Duration

	// MaxPeers caps installed just-in-time peers; installing one more
	// first evicts the least recently active. Static peers do not count.
	// Default 16384.
	MaxPeers int

	// RevalidateInterval re-asks the provider about every installed
	// just-in-time peer at this interval: a key now unknown is removed
	// (revocation), a changed configuration is applied, and a failed
	// lookup keeps the peer (an outage cuts no one off), and so does a
	// changed answer refused by the rules of a first install (one taking a
	// static peer's allowed IPs). Default 5 min;
	// negative never revalidates.
	RevalidateInterval time.Duration

	// MaxLookups bounds concurrent provider calls (a batch lookup counts
	// as one); a lookup beyond it waits for one to end, an outbound one
	// is dropped. Default 64.
	MaxLookups int

	// MaxLookupRate bounds, over all sources together, the initiations
	// from new sources decoded (and so looked up) each second, with a
	// burst of one second's worth (budget.go); per source they are
	// limited as well. An initiation beyond it passes to upstream
	// undecoded (an unknown key's is dropped there, and its client
	// retransmits) and counts in Counters.LookupsRefused. Default 200;
	// negative: no limit.
	MaxLookupRate int

	// RestoreDeadline bounds how long a restarted device spends
	// reinstalling the just-in-time peers its state file lists
	// (restore.go); the ones not reached by then come back when their
	// clients knock, as their own timers make them within about two
	// minutes. Default 2 min.
	RestoreDeadline time.Duration

	// OnPeerEvent is notified of installs, refusals, failures, evictions,
	// revocations and updates. Default: nothing.
	OnPeerEvent hooks.OnPeerEvent

	// Outbound turns on the outbound side: a packet from the TUN to an
	// address no installed peer covers asks the provider which peer holds
	// it and installs that peer, so the gateway can reach a client first
	// (outbound.go). The provider must implement hooks.AddrProvider.
	// Default false: such packets are dropped, as upstream drops them.
	Outbound bool
}

const (
	decodeQueueLen = 1024
	maxHeld        = 4096
	maxWatched     = 1024
	maxNegative    = 1 << 16
	// watchAfter is how long the device gets to answer an initiation
	// from a known source before wghooks decodes it itself.
	watchAfter = 300 * time.Millisecond
	// removedMemory is how long a removal cancels a lookup that was
	// already under way for the same key.
	removedMemory = time.Minute
)

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.LookupTimeout, 3*time.Second)
	def(&c.NegativeTTL, time.Minute)
	def(&c.ErrorRetry, 2*time.Second)
	def(&c.HoldTimeout, 4*time.Second)
	def(&c.IdleTimeout, 10*time.Minute)
	def(&c.RevalidateInterval, 5*time.Minute)
	def(&c.RestoreDeadline, 2*time.Minute)
	if c.MaxPeers <= 0 {
		c.MaxPeers = 16384
	}
	if c.MaxLookups <= 0 {
		c.MaxLookups = 64
	}
	if c.MaxLookupRate == 0 {
		c.MaxLookupRate = defaultLookupRate
	}
	return c
}

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

type lookupCall struct {
	done chan struct{}
	cfg  hooks.PeerConfig
	err  error
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

// ReceiveTypes selects initiations while a provider is set.
func (j *JIT) ReceiveTypes() uint8 {
	if !j.enabled() {
		return 0
	}
	return conn.TypeMask(conn.MessageInitiation)
}

// OnReceive runs on a receive goroutine: it never blocks. It calls the
// upstream device's IsUnderLoad, which reads a channel length and an
// atomic and takes no lock.
func (j *JIT) OnReceive(pkt []byte, ep wgconn.Endpoint) conn.Verdict {
	if len(pkt) != conn.MessageInitiationSize {
		return conn.Pass
	}
	id := j.host.Identity()
	if id == nil {
		return conn.Pass
	}
	src := conn.DstAddrPort(ep)
	if !src.IsValid() {
		return conn.Pass
	}
	now := time.Now()
	if j.host.Sources().Known(src, now) {
		j.watchInitiation(pkt, ep, src, now)
		return conn.Pass
	}
	if !j.admit(id, pkt, src) {
		return conn.Pass
	}
	job := decodeJob{ep: ep, src: src, at: now}
	copy(job.pkt[:], pkt)
	select {
	case j.jobs <- job:
		return conn.Hold
	default:
		return conn.Pass
	}
}

// admit decides from cheap signals whether an initiation may cost a
// decode: a valid mac1, a device and decoders that are not under load
// (then upstream's cookie defence handles everything), the source IP
// within its rate, and all sources together within the lookup budget.
func (j *JIT) admit(id *feature.Identity, pkt []byte, src netip.AddrPort) bool {
	if !id.CheckMAC1(pkt) {
		return false
	}
	if j.host.Upstream().IsUnderLoad() || len(j.jobs) >= cap(j.jobs)/2 {
		return false
	}
	if !j.limiter.Allow(src.Addr()) {
		return false
	}
	if !j.budget.allow(time.Now()) {
		j.c.LookupsRefused.Add(1)
		return false
	}
	return true
}

// OnSend learns which watched initiations the device answered (the
// core learns known sources from the same messages).
func (j *JIT) OnSend(bufs [][]byte, _ wgconn.Endpoint) {
	if !j.enabled() || len(bufs) != 1 {
		return
	}
	pkt := bufs[0]
	switch conn.MessageType(pkt) {
	case conn.MessageResponse:
		if r, ok := conn.ResponseReceiver(pkt); ok {
			j.watch.answered(r)
		}
	case conn.MessageCookieReply:
		if len(pkt) == conn.MessageCookieReplySize {
			j.watch.answered(conn.InitiationSender(pkt))
		}
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

// installLooked installs key with the configuration its lookup returned
// (applyLooked), and counts the install.
func (j *JIT) installLooked(key feature.Key, cfg hooks.PeerConfig, lost string) bool {
	if !j.applyLooked(key, cfg, lost) {
		return false
	}
	j.c.PeersInstalled.Add(1)
	return true
}

// applyLooked applies a provider's answer for key (applyAnswer). A
// refusal or failure is reported (answerRefused) and false returned.
func (j *JIT) applyLooked(key feature.Key, cfg hooks.PeerConfig, lost string) bool {
	if err := j.applyAnswer(key, cfg); err != nil {
		j.answerRefused(key, err, lost)
		return false
	}
	return true
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

// lookup asks the provider about key, merging concurrent asks of the same
// key into one call. The answer is validated: invalid data is an error.
func (j *JIT) lookup(key feature.Key) (hooks.PeerConfig, error) {
	j.mu.Lock()
	if c, ok := j.calls[key]; ok {
		j.mu.Unlock()
		select {
		case <-c.done:
			return c.cfg, c.err
		case <-j.ctx.Done():
			return hooks.PeerConfig{}, fmt.Errorf("failed to look up %s: %w", feature.ShortKey(key), j.ctx.Err())
		}
	}
	c := &lookupCall{done: make(chan struct{})}
	j.calls[key] = c
	j.mu.Unlock()

	start := time.Now()
	c.cfg, c.err = j.withSlot(key, func() (hooks.PeerConfig, error) { return j.callProvider(key) })
	j.countLookup(uint64(time.Since(start)), c.err)
	close(c.done)
	j.mu.Lock()
	delete(j.calls, key)
	j.mu.Unlock()
	return c.cfg, c.err
}

// countLookup counts one key's lookup that took lat nanoseconds (a
// batch's whole call for each of its keys) and ended with err.
func (j *JIT) countLookup(lat uint64, err error) {
	j.c.ProviderLookups.Add(1)
	j.c.ProviderLatencyNanos.Add(lat)
	if err != nil && !errors.Is(err, hooks.ErrUnknownPeer) {
		j.c.ProviderErrors.Add(1)
	}
}

// callProvider runs one provider call with the lookup timeout. The call
// runs on a goroutine of its own so a provider that ignores its context
// costs that goroutine, not the device's; a panic is an error.
func (j *JIT) callProvider(key feature.Key) (hooks.PeerConfig, error) {
	cfg, err := j.callTimed(func(ctx context.Context) (hooks.PeerConfig, error) {
		return j.cfg.Provider.LookupPeer(ctx, hooks.PublicKey(key))
	})
	return j.checkAnswer(key, cfg, err)
}

// checkAnswer is the provider's answer about key as the device takes it:
// ErrUnknownPeer as it is, another error or invalid data as a failed
// lookup.
func (j *JIT) checkAnswer(key feature.Key, cfg hooks.PeerConfig, err error) (hooks.PeerConfig, error) {
	if err != nil {
		if errors.Is(err, hooks.ErrUnknownPeer) {
			return cfg, err
		}
		return cfg, fmt.Errorf("failed to look up %s: %w", feature.ShortKey(key), err)
	}
	if err := cfg.Validate(hooks.PublicKey(key)); err != nil {
		return cfg, fmt.Errorf("failed to look up %s: %w", feature.ShortKey(key), err)
	}
	return cfg, nil
}

// callTimed runs one provider call with the lookup timeout (timedCall).
func (j *JIT) callTimed(call func(ctx context.Context) (hooks.PeerConfig, error)) (hooks.PeerConfig, error) {
	return timedCall(j, call)
}

// timedCall runs one provider call with the lookup timeout, on a
// goroutine of its own; a panic is an error.
func timedCall[T any](j *JIT, call func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(j.ctx, j.cfg.LookupTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	res := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.err = fmt.Errorf("provider panicked: %v", p)
			}
			res <- r
		}()
		r.v, r.err = call(ctx)
	}()
	select {
	case r := <-res:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// applyAnswer installs or updates key with cfg, a provider's answer. It
// is the one path every answer takes (a first install, revalidation, the
// outbound side, a restart restore), so all follow the same rules: an
// answer for the key of a static peer is refused, and so is one whose
// allowed IPs overlap a static peer's; installing one more peer first
// evicts the least recently active if the cap is reached. A new peer's
// persistent keepalive is left to the caller (see provision); an
// installed one's is set with the rest.
func (j *JIT) applyAnswer(key feature.Key, cfg hooks.PeerConfig) error {
	return j.applyAnswers([]answer{{key, cfg}})[0]
}

// configurePeer installs or updates key with cfg through the host and
// marks it just in time. installMu is held: the cap counts the mark.
func (j *JIT) configurePeer(key feature.Key, cfg hooks.PeerConfig) error {
	c := feature.Config{Peers: []feature.PeerConfig{InstallConfig(key, cfg)}}
	if err := j.host.Configure(j.Name(), c); err != nil {
		return err
	}
	j.mark(key, true)
	return nil
}

// InstallConfig is the typed change that installs or updates key with a
// provider's answer cfg: its allowed IPs replace the peer's, its preshared
// key (all zero: none) and keepalive are set, and its endpoint when it
// has one. It is pure.
func InstallConfig(key feature.Key, cfg hooks.PeerConfig) feature.PeerConfig {
	psk := [32]byte(cfg.PresharedKey)
	keepalive := cfg.PersistentKeepalive
	pc := feature.PeerConfig{
		PublicKey:         key,
		Endpoint:          cfg.Endpoint,
		PresharedKey:      &psk,
		Keepalive:         &keepalive,
		ReplaceAllowedIPs: true,
		AllowedIPs:        cfg.AllowedIPs,
	}
	return pc
}

func (j *JIT) setNegative(key feature.Key, ttl time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.negative) >= maxNegative {
		now := time.Now()
		for k, until := range j.negative {
			if now.After(until) {
				delete(j.negative, k)
			}
		}
		if len(j.negative) >= maxNegative {
			return
		}
	}
	j.negative[key] = time.Now().Add(ttl)
}

func (j *JIT) removedSince(key feature.Key, t time.Time) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	at, ok := j.removed[key]
	return ok && !at.Before(t)
}

func (j *JIT) event(ev hooks.PeerEvent) {
	if f := j.cfg.OnPeerEvent; f != nil {
		f(ev)
	}
}

// Configured follows every configuration transaction after upstream
// applied it. Every origin's moves routes (the outbound route set) and
// removes peers; only the operator's pins routes of static peers, and
// makes a peer it configures without wghooks_jit static (never evicted).
// The feature's own changes (origin "jit") and other features' (a
// restart restoring an endpoint) leave a just-in-time peer as it is.
func (j *JIT) Configured(c feature.Change) {
	set := c.Set
	if c.ByOperator() {
		j.static.apply(set)
	}
	if j.out != nil {
		j.out.routes.apply(set, j.host.HasPeer)
	}
	var gone []feature.Key
	j.mu.Lock()
	for _, p := range set.Peers {
		key := feature.Key(p.PublicKey)
		switch {
		case p.Remove:
			gone = append(gone, key)
		case c.ByOperator() && !hasLine(p.Ext, "wghooks_jit"):
			delete(j.peers, key)
		}
	}
	if set.ReplacePeers {
		for key := range j.peers {
			if !j.host.HasPeer(key) {
				gone = append(gone, key)
			}
		}
	}
	j.mu.Unlock()
	if len(gone) > 0 {
		j.forget(gone)
	}
}

func hasLine(lines []uapi.Line, key string) bool {
	for _, l := range lines {
		if l.Key == key {
			return true
		}
	}
	return false
}

// lineValue is the value of the last line with key, "" without one.
func lineValue(lines []uapi.Line, key string) string {
	v := ""
	for _, l := range lines {
		if l.Key == key {
			v = l.Value
		}
	}
	return v
}

// forget drops wghooks' state for removed peers: they are no longer just
// in time, their lookups under way must not reinstall them, and their
// source addresses must be decoded again.
func (j *JIT) forget(keys []feature.Key) {
	now := time.Now()
	j.mu.Lock()
	for _, k := range keys {
		delete(j.peers, k)
		j.removed[k] = now
	}
	j.mu.Unlock()
	j.host.Sources().Purge(keys)
}

// watchSet holds copies of initiations passed to the device from known
// sources until the device answers them (a response or cookie reply to
// their sender index), and lets provisioning wait for an answer.
type watchSet struct {
	mu      sync.Mutex
	m       map[uint32]decodeJob
	waiters map[uint32]chan struct{}
}

func (j *JIT) watchInitiation(pkt []byte, ep wgconn.Endpoint, src netip.AddrPort, now time.Time) {
	w := &j.watch
	w.mu.Lock()
	if len(w.m) >= maxWatched {
		w.mu.Unlock()
		return
	}
	job := decodeJob{ep: ep, src: src, at: now, watched: true}
	copy(job.pkt[:], pkt)
	w.m[conn.InitiationSender(pkt)] = job
	first := len(w.m) == 1
	w.mu.Unlock()
	if first {
		select {
		case j.kick <- struct{}{}:
		default:
		}
	}
}

func (w *watchSet) answered(sender uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, sender)
	if ch, ok := w.waiters[sender]; ok {
		close(ch)
		delete(w.waiters, sender)
	}
}

// await returns a channel closed when the device answers sender.
func (w *watchSet) await(sender uint32) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiters == nil {
		w.waiters = make(map[uint32]chan struct{})
	}
	ch := make(chan struct{})
	w.waiters[sender] = ch
	return ch
}

func (w *watchSet) forget(sender uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.waiters, sender)
}

// unanswered removes and returns the watched initiations older than
// watchAfter, and reports whether any remain.
func (w *watchSet) unanswered(now time.Time) (due []decodeJob, more bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, job := range w.m {
		if now.Sub(job.at) >= watchAfter {
			due = append(due, job)
			delete(w.m, k)
		}
	}
	return due, len(w.m) > 0
}

// redecode sends unanswered initiations to the decoders, under the same
// gates as new sources.
func (j *JIT) redecode(due []decodeJob) {
	id := j.host.Identity()
	for _, job := range due {
		if id == nil || !j.admit(id, job.pkt[:], job.src) {
			continue
		}
		select {
		case j.jobs <- job:
		default:
			return
		}
	}
}

// Keys are the feature's UAPI keys. It works on a zero value: the
// closures only call methods of j when a key is applied.
func (j *JIT) Keys() []feature.ExtKey {
	return []feature.ExtKey{
		{
			Name: "wghooks_jit", Peer: true,
			Doc:      "true marks a just-in-time peer (evictable, revalidated); false makes it static",
			Validate: feature.ValidateBool,
			ApplyPeer: func(pk feature.Key, v string) error {
				j.mark(pk, v == "true")
				return nil
			},
		},
		{
			Name:     "wghooks_jit_forget",
			Doc:      "hex public key: forget a cached \"unknown\" answer so the key's next initiation asks the provider again",
			Validate: feature.ValidateHexKey,
			ApplyDevice: func(v string) error {
				k, _ := uapi.ParseKey(v)
				j.mu.Lock()
				delete(j.negative, k)
				j.mu.Unlock()
				return nil
			},
		},
	}
}

// PeerGetLines says wghooks_jit=true for a just-in-time peer.
func (j *JIT) PeerGetLines(pk feature.Key) []uapi.Line {
	if j.isJIT(pk) {
		return []uapi.Line{{Key: "wghooks_jit", Value: "true"}}
	}
	return nil
}

// mark makes pk a just-in-time peer (jit) or a static one.
func (j *JIT) mark(pk feature.Key, isJIT bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !isJIT {
		delete(j.peers, pk)
		return
	}
	if _, ok := j.peers[pk]; ok || !j.host.HasPeer(pk) {
		return
	}
	now := time.Now()
	j.peers[pk] = &jitPeer{installed: now, lastActive: now, rx: -1, tx: -1}
}

func (j *JIT) isJIT(pk feature.Key) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	_, ok := j.peers[pk]
	return ok
}

package restart

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/uapi"
)

// Recovery across restarts.
//
// A restarted WireGuard server holds no sessions, and its clients hold keys
// the new process never saw. Left alone, a client re-handshakes only when
// one of its timers fires: about 15 s after it sends data, up to 180 s if
// it only sends keepalives, never while it is idle. The restart feature
// brings traffic back within one round trip of the new process being
// configured, with at most one handshake per peer:
//
//  1. State (state.go): the endpoints the device learned (roaming clients'
//     current addresses) and its last handshake times go to a file on
//     drain, on Close and every StateInterval; the next process applies
//     them to its configured peers before Up. Features that keep state of
//     their own get their section of the file back (feature.StateSection:
//     the just-in-time peers are asked about again and reinstalled in the
//     background, each with one initiation, by device/jit).
//  2. Broadcast (broadcast.go): at Up the device sends a handshake
//     initiation to every peer whose endpoint it knows. Clients answer
//     within one round trip; the device confirms the session with a
//     keepalive, so both sides switch to it at once.
//  3. Stale-session wake (wake.go): data arriving on a receiver index this
//     process never issued, from a peer's known address, starts a
//     handshake to that peer at once instead of being dropped silently.
//  4. Drain (drain.go): before a planned restart, expire every keypair,
//     save the state file and report draining to readiness probes.
//  5. Dead-peer detection (deadpeer.go, client side, opt-in): sent and
//     heard nothing back for DeadPeerTimeout starts a handshake now.
//  6. Fleet state (fleet.go): with a provider that keeps the fleet's
//     state (hooks.StateStore), learned endpoints and handshakes also go
//     to the store, and a replacement gateway that took over the
//     address (Takeover) starts from them as from a state file.
//
// Only the side that restarted broadcasts: two sides initiating at the
// same moment cross and stall for 5 s. Upstream's 5 s limit on handshake
// initiations applies to everything here; nothing bypasses it.

// Defaults of Config.
const (
	// DefaultStateInterval is how often the state file is rewritten while
	// the device is up.
	DefaultStateInterval = 30 * time.Second
	// DefaultStateMaxAge is the age past which a state file is stale.
	DefaultStateMaxAge = 24 * time.Hour
	// DefaultStateDir is where the daemon keeps its state files, one per
	// interface (IFACE.json).
	DefaultStateDir = "/var/lib/wghooks"
)

// BroadcastMode selects when the startup handshake broadcast runs.
type BroadcastMode int

const (
	// BroadcastAtUp broadcasts each time the device comes up, to the peers
	// configured then. A kernel TUN comes up with its link: in the
	// wg-quick flow that is after `wg setconf`, so every configured peer
	// is reached. A netstack TUN is up from its creation, before anything
	// is configured: call Restart.Broadcast (Device.Broadcast) after configuring, or use
	// BroadcastAtFirstPeers.
	BroadcastAtUp BroadcastMode = iota
	// BroadcastAtFirstPeers is BroadcastAtUp, and when the device came up
	// with no peers, broadcasts at the end of the first configuration
	// transaction that adds some (for `ip link set up` before `wg
	// setconf`, and for netstack). Configure all peers in that one
	// transaction. This is the daemon's default.
	BroadcastAtFirstPeers
	// BroadcastOff never broadcasts by itself; Restart.Broadcast and the
	// UAPI key wghooks_broadcast=true still do.
	BroadcastOff
)

func (m BroadcastMode) String() string {
	switch m {
	case BroadcastAtUp:
		return "at-up"
	case BroadcastAtFirstPeers:
		return "at-first-peers"
	case BroadcastOff:
		return "off"
	}
	return "BroadcastMode(" + strconv.Itoa(int(m)) + ")"
}

// Config configures recovery across restarts. The zero value
// broadcasts handshakes at Up and wakes stale sessions; the state file and
// dead-peer detection are off.
type Config struct {
	// Broadcast selects when the device sends a handshake initiation to
	// every peer whose endpoint it knows. Default BroadcastAtUp.
	Broadcast BroadcastMode

	// StateFile is the path of the file that carries learned endpoints
	// and last handshake times to the next process. Default "": no state
	// file. The daemon uses DefaultStateDir/IFACE.json.
	StateFile string

	// StateInterval is how often the state file is rewritten while the
	// device is up, so a crash loses at most this much. Default
	// DefaultStateInterval; negative: only on drain and Close.
	StateInterval time.Duration

	// StateMaxAge is the age past which a state file is stale and
	// ignored. Default DefaultStateMaxAge.
	StateMaxAge time.Duration

	// NoStaleWake turns stale-session wake off. Default false: on.
	NoStaleWake bool

	// DeadPeerTimeout turns on dead-peer detection when positive: a peer
	// we have sent to (data or keepalive) and heard nothing from for this
	// long gets a handshake initiation now rather than when upstream's
	// 15 s timer fires. Each peer is retried at most every
	// max(DeadPeerTimeout, 5 s), doubling up to 2 minutes while it stays
	// silent. A peer that only receives our keepalives never answers
	// them, so for it this costs one handshake per timeout. Default 0:
	// off.
	DeadPeerTimeout time.Duration

	// StoreInterval is how often the endpoints and last handshakes the
	// device learned go to the fleet's store, when the provider keeps one
	// (hooks.StateStore; fleet.go); they also go on drain and Close.
	// Default DefaultStoreInterval; negative: only on drain and Close.
	StoreInterval time.Duration

	// Takeover lets a start without a usable state file (none, one
	// written before TakeoverWindow, or one for another private key)
	// read the fleet's store and send one handshake initiation to each
	// peer active with the device's key within TakeoverWindow, at its
	// last endpoint (fleet.go). Turn it on for a
	// gateway that takes over the address its clients use (a floating
	// IP, a DNS name moved to it); never behind a UDP load balancer,
	// where an initiation from the gateway's own address would pull the
	// client off the balancer. The store is read once, before Up
	// completes, for at most 3 s. Default false.
	Takeover bool

	// TakeoverWindow is how recent a peer's last handshake must be for a
	// takeover to reach it. Default DefaultTakeoverWindow.
	TakeoverWindow time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.Broadcast < BroadcastAtUp || c.Broadcast > BroadcastOff {
		return c, fmt.Errorf("failed to configure restart recovery: unknown broadcast mode %v", c.Broadcast)
	}
	if c.StateInterval == 0 {
		c.StateInterval = DefaultStateInterval
	}
	if c.StateMaxAge <= 0 {
		c.StateMaxAge = DefaultStateMaxAge
	}
	if c.StoreInterval == 0 {
		c.StoreInterval = DefaultStoreInterval
	}
	if c.TakeoverWindow < 0 {
		return c, fmt.Errorf("failed to configure restart recovery: negative takeover window %v", c.TakeoverWindow)
	}
	if c.TakeoverWindow == 0 {
		c.TakeoverWindow = DefaultTakeoverWindow
	}
	if c.DeadPeerTimeout < 0 {
		return c, fmt.Errorf("failed to configure restart recovery: negative dead-peer timeout %v", c.DeadPeerTimeout)
	}
	return c, nil
}

// Restart is the restart-recovery feature.
type Restart struct {
	feature.Base
	host feature.Host
	c    *feature.Counters
	cfg  Config // with defaults

	// providerPeers: peers may come from a provider (just-in-time), so
	// the state file applies before any peer is configured.
	providerPeers bool
	// sections lists the features that keep a section of the state file.
	sections func() []feature.StateSection
	// store is the fleet's state store; nil without one.
	store hooks.StateStore

	// startup guards the actions that run once the device is up with
	// peers. Lock order: the core's lifecycle, then startup, then state.
	startup struct {
		sync.Mutex
		everUp           bool
		restorePending   bool // the state file has not been applied yet
		broadcastPending bool // BroadcastAtFirstPeers: came up with no peers
	}

	// configured remembers each peer's endpoint as configured, not as
	// learned. The state file records it, so that after the operator
	// changes a peer's endpoint the next process does not bring back the
	// one it learned at the old address.
	configured struct {
		sync.Mutex
		m map[feature.Key]string
	}

	state  stateKeeper
	stored stored
	recent recentInitiations
	wake   staleWake
}

// Wiring is what the core tells the restart feature about the others.
type Wiring struct {
	// ProviderPeers: peers may come from a provider (just-in-time), so
	// the state file applies as soon as the device has its key, before
	// any peer is configured.
	ProviderPeers bool
	// Sections lists the features that keep a section of the state file,
	// in the core's order; called when the file is written or applied.
	// Nil: none.
	Sections func() []feature.StateSection
	// Store is the provider as a fleet's state store (hooks.StateStore),
	// when it is one; nil otherwise.
	Store hooks.StateStore
}

// New builds the feature on host and starts its goroutines.
func New(host feature.Host, cfg Config, w Wiring) (*Restart, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Restart{host: host, c: host.Counters(), cfg: cfg, providerPeers: w.ProviderPeers, sections: w.Sections, store: w.Store}
	if r.sections == nil {
		r.sections = func() []feature.StateSection { return nil }
	}
	r.configured.m = make(map[feature.Key]string)
	r.recent.init()
	r.state.init()
	r.stored.saved = make(map[feature.Key]hooks.PeerState)
	if !cfg.NoStaleWake {
		r.wake.init()
		host.Go(r.wakeLoop)
	}
	if cfg.StateFile != "" && cfg.StateInterval > 0 {
		host.Go(r.stateLoop)
	}
	if cfg.DeadPeerTimeout > 0 {
		host.Go(r.deadPeerLoop)
	}
	if r.store != nil && cfg.StoreInterval > 0 {
		host.Go(r.storeLoop)
	}
	return r, nil
}

// Name is the feature's name in logs and the origin of its changes.
func (*Restart) Name() string { return "restart" }

// BeforeUp runs with the lifecycle lock held: sessions from before this
// Up are gone (upstream zeroes keys on Down), so stale-session tracking
// starts over; the first time, the state file is applied.
func (r *Restart) BeforeUp() {
	if !r.cfg.NoStaleWake {
		r.wake.reset()
	}
	s := &r.startup
	s.Lock()
	defer s.Unlock()
	if !s.everUp {
		s.everUp = true
		s.restorePending = r.cfg.StateFile != "" || r.takeoverEnabled()
	}
	if s.restorePending && r.canRestore() {
		r.restoreLocked()
	}
}

// canRestore reports whether the state file can be applied now: once
// peers are configured, or at once when peers may come from a provider
// (all of them then from the file's sections).
func (r *Restart) canRestore() bool { return r.host.PeerCount() > 0 || r.providerPeers }

// AfterUp runs with the lifecycle lock held and starts the broadcast on
// its own goroutine, so Up does not wait for thousands of initiations.
func (r *Restart) AfterUp() {
	if r.cfg.Broadcast == BroadcastOff {
		return
	}
	s := &r.startup
	s.Lock()
	defer s.Unlock()
	if !r.readyToStart() {
		s.broadcastPending = r.cfg.Broadcast == BroadcastAtFirstPeers
		return
	}
	s.broadcastPending = false
	r.host.Go(func() { r.broadcast("startup") })
}

// readyToStart reports whether the device holds what the startup actions
// need: its private key and at least one peer.
func (r *Restart) readyToStart() bool { return r.host.Configured() && r.host.PeerCount() > 0 }

// Configured follows every configuration transaction, on the
// configuring goroutine (never with the lifecycle lock held). Its own
// changes (origin "restart", made by restoreLocked with the startup lock
// held, maybe under the lifecycle lock) are ignored. After a transaction
// that succeeded, if the device came up before it had its key and peers,
// the startup actions run now.
func (r *Restart) Configured(c feature.Change) {
	if c.Origin == "restart" || c.Err != nil {
		return
	}
	set := c.Set
	r.trackConfigured(set, c.ByOperator())
	if !r.host.Configured() || !r.host.IsUp() {
		return
	}
	s := &r.startup
	s.Lock()
	if s.restorePending && r.canRestore() {
		r.restoreLocked()
	}
	bc := s.broadcastPending && r.readyToStart()
	if bc {
		s.broadcastPending = false
	}
	s.Unlock()
	if bc {
		r.broadcast("first peers configured")
	}
}

// trackConfigured records the endpoints the operator gives in a set
// transaction (byOperator); any transaction forgets removed peers.
func (r *Restart) trackConfigured(set *uapi.Set, byOperator bool) {
	c := &r.configured
	c.Lock()
	defer c.Unlock()
	if set.ReplacePeers {
		clear(c.m)
	}
	for _, p := range set.Peers {
		pk := feature.Key(p.PublicKey)
		if p.Remove || !r.host.HasPeer(pk) {
			delete(c.m, pk)
			continue
		}
		if !byOperator {
			continue
		}
		for _, l := range p.Lines {
			if l.Key == "endpoint" {
				c.m[pk] = feature.NormalizeEndpoint(l.Value)
			}
		}
	}
}

func (r *Restart) configuredEndpoint(pk feature.Key) string {
	r.configured.Lock()
	defer r.configured.Unlock()
	return r.configured.m[pk]
}

// Close saves the state for the next process. It runs from the core's
// Close before the upstream device closes, so the sessions are still
// there.
func (r *Restart) Close() {
	if err := r.saveState("exit"); err != nil {
		r.host.Errorf("%v", err)
	}
	if err := r.saveStoreOnExit("exit"); err != nil {
		r.host.Errorf("%v", err)
	}
	r.wake.stop()
}

// everyWhileUp calls fn every interval while the device is up, until
// Close. It runs on the calling goroutine.
func (r *Restart) everyWhileUp(interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.host.Done():
			return
		case <-t.C:
		}
		if r.host.IsUp() {
			fn()
		}
	}
}

// ReceiveTypes selects initiations (noted so a broadcast does not cross
// them) and, for stale-session wake, data.
func (r *Restart) ReceiveTypes() uint8 {
	if r.cfg.NoStaleWake {
		return conn.TypeMask(conn.MessageInitiation)
	}
	return conn.TypeMask(conn.MessageInitiation, conn.MessageTransport)
}

// OnReceive runs on a receive goroutine and never blocks.
func (r *Restart) OnReceive(packet []byte, ep wgconn.Endpoint) conn.Verdict {
	switch packet[0] {
	case conn.MessageTransport:
		r.wake.sawTransport(packet, ep)
	case conn.MessageInitiation:
		if !r.host.Upstream().IsUnderLoad() {
			r.recent.note(ep)
		}
	}
	return conn.Pass
}

// OnSend learns the indices of the handshake messages the device sends.
func (r *Restart) OnSend(bufs [][]byte, _ wgconn.Endpoint) {
	// Upstream sends each handshake message alone.
	if len(bufs) != 1 {
		return
	}
	if !r.cfg.NoStaleWake {
		r.wake.sawSent(bufs[0])
	}
}

// Actions is the typed form of the restart feature's UAPI keys:
// Configure does what a set transaction with the matching keys does, in
// the same order.
type Actions struct {
	// Undrain leaves the draining state, when a planned restart is called
	// off (drain=false). Expired keypairs are simply renewed.
	Undrain bool
	// Drain is Drain (drain=true).
	Drain bool
	// SaveState writes the state file now (wghooks_save_state=true).
	SaveState bool
	// Broadcast is Broadcast (wghooks_broadcast=true).
	Broadcast bool
}

// Configure runs the requested actions: undrain, drain, save state,
// broadcast. It runs all of them and returns their errors joined.
func (r *Restart) Configure(a Actions) error {
	if a.Drain && a.Undrain {
		return fmt.Errorf("failed to configure restart recovery: drain and undrain together")
	}
	var errs []error
	if a.Undrain {
		r.Undrain()
	}
	if a.Drain {
		errs = append(errs, r.Drain())
	}
	if a.SaveState {
		errs = append(errs, r.SaveState())
	}
	if a.Broadcast {
		_, err := r.Broadcast()
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Keys are the feature's UAPI keys. It works on a zero value: the
// closures only call methods of r when a key is applied.
func (r *Restart) Keys() []feature.ExtKey {
	return []feature.ExtKey{
		{
			Name:     "drain",
			Doc:      "true: expire every peer's keypairs, save the state file and report draining; false: stop reporting draining",
			Validate: feature.ValidateBool,
			ApplyDevice: func(v string) error {
				return r.Configure(Actions{Drain: v == "true", Undrain: v == "false"})
			},
		},
		{
			Name:     "wghooks_broadcast",
			Doc:      "true: send a handshake initiation now to every peer whose endpoint is known",
			Validate: feature.ValidateTrue,
			ApplyDevice: func(string) error {
				return r.Configure(Actions{Broadcast: true})
			},
		},
		{
			Name:     "wghooks_save_state",
			Doc:      "true: write the state file (learned endpoints, last handshakes) now",
			Validate: feature.ValidateTrue,
			ApplyDevice: func(string) error {
				return r.Configure(Actions{SaveState: true})
			},
		},
	}
}

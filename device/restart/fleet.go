package restart

// State handed across machines. The state file carries what a process
// learned to the next process on the same machine; a fleet's shared store
// (the provider, when it implements hooks.StateStore) carries it to
// another machine:
//
//  1. Save (every StoreInterval while up, on drain and on Close): the
//     endpoint and last handshake of each peer that has both go to the
//     store under the device's public key (PeerState.Gateway), only
//     those that changed since the last save that succeeded, in batches
//     of storeBatch. A failed batch is retried at the next save; nothing
//     on the packet paths waits for the store.
//  2. Takeover (Config.Takeover, off by default): a gateway that starts
//     with no usable state file of its own (none; or one written before
//     TakeoverWindow or for another private key: supersededBy) reads the
//     states written under its own public key whose handshake is within
//     TakeoverWindow and treats them as a state file written now for its
//     own key: configured peers without an endpoint of the
//     operator's get the saved one (the startup broadcast then sends each
//     one initiation), and the others go to the just-in-time restore
//     (device/jit/restore.go), which asks the provider about each key
//     again, installs the ones it still serves under the same rules as
//     any answer (never a static peer's addresses) and sends each one
//     initiation. A fresh state file for the device's key wins: it is
//     this machine's own and more precise. A superseded file with nothing
//     to take over is applied under its usual rules.
//
// When a gateway may take over, and when it must not:
//
//   - It may when clients reach it at the address they already use: it
//     took over the old machine's address (a floating IP, keepalived,
//     an anycast or BGP move), or the name clients resolve now points to
//     it and their configuration names that address. Its initiation then
//     comes from the address the client expects, and the client's
//     session resumes in one round trip with no change on its side.
//   - It must not behind a UDP load balancer: its initiation would leave
//     from its own address, not the balancer's, and a client roams to
//     the source of the last authenticated packet, so the client would
//     leave the balancer for this one machine. Behind a balancer, clients
//     recover on their own side (flow escape, device/flowescape).
//
// Only state written under the device's own key is read: another fleet
// sharing the store, or a machine configured with another key, sends no
// initiation a client would not answer. Rows written before stores
// recorded the writer's key are never read. Of what is read, only keys
// the provider still serves are installed.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
)

// Defaults of Config's fleet fields.
const (
	// DefaultStoreInterval is how often learned state goes to the
	// fleet's store while the device is up.
	DefaultStoreInterval = 10 * time.Second
	// DefaultTakeoverWindow is how recent a peer's handshake must be for
	// a takeover to reach it: active peers rekey every 2 minutes.
	DefaultTakeoverWindow = 5 * time.Minute
)

const (
	// storeBatch bounds the states in one SavePeerState call.
	storeBatch = 512
	// storeTimeout bounds one SavePeerState call.
	storeTimeout = 5 * time.Second
	// takeoverTimeout bounds the takeover's LoadPeerState: it runs
	// before Up completes.
	takeoverTimeout = 3 * time.Second
	// takeoverLimit bounds the states a takeover reads (upstream's
	// MaxPeers).
	takeoverLimit = 1 << 16
)

// takeoverSource names the store in the restore's log lines.
const takeoverSource = "the fleet's state store"

// stored remembers what the store holds from this process, so a save
// sends only what changed. Its lock serializes saves; it is taken before
// the state lock.
type stored struct {
	sync.Mutex
	saved map[feature.Key]hooks.PeerState
}

// storeChanges returns the states of the peers that have an endpoint and
// a handshake and differ from saved, written by gateway. It is pure. A
// state saved under another gateway key differs: the store keeps each
// key's states apart, so a new private key starts from nothing saved.
func storeChanges(gateway feature.Key, peers []feature.PeerView, saved map[feature.Key]hooks.PeerState) []hooks.PeerState {
	var out []hooks.PeerState
	for _, p := range peers {
		if !p.Addr.IsValid() || p.Handshake.IsZero() {
			continue
		}
		st := hooks.PeerState{
			Key:           hooks.PublicKey(p.PublicKey),
			Endpoint:      netip.AddrPortFrom(p.Addr.Addr().Unmap(), p.Addr.Port()),
			LastHandshake: p.Handshake,
			Gateway:       hooks.PublicKey(gateway),
		}
		if old, ok := saved[p.PublicKey]; ok && old.Gateway == st.Gateway && old.Endpoint == st.Endpoint && old.LastHandshake.Equal(st.LastHandshake) {
			continue
		}
		out = append(out, st)
	}
	return out
}

// SaveFleetState writes the learned state to the fleet's store now.
// Without a store it does nothing.
func (r *Restart) SaveFleetState() error { return r.saveStore(context.Background(), "on demand") }

// saveStore sends the changed states to the store in batches; ctx bounds
// the whole save (each batch also gets storeTimeout).
func (r *Restart) saveStore(ctx context.Context, why string) error {
	if r.store == nil {
		return nil
	}
	r.startup.Lock()
	everUp := r.startup.everUp
	r.startup.Unlock()
	if !everUp {
		return nil // nothing learned yet
	}
	s := &r.stored
	s.Lock()
	defer s.Unlock()
	v, live, err := r.liveView()
	if !live {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to save state to the fleet's store: %w", err)
	}
	own, ok := v.PublicKey()
	if !ok {
		return nil // no key yet: nothing learned under one
	}
	r.state.Lock()
	peers := r.withCarriedLocked(&v).Peers
	r.state.Unlock()
	return r.saveStoreLocked(ctx, own, peers, why)
}

// saveStoreLocked sends what changed in peers to the store, in batches,
// written by gateway (the device's public key), and remembers what the
// store took. Called with the stored lock held.
func (r *Restart) saveStoreLocked(ctx context.Context, gateway feature.Key, peers []feature.PeerView, why string) error {
	s := &r.stored
	changes := storeChanges(gateway, peers, s.saved)
	for len(changes) > 0 {
		batch := changes[:min(storeBatch, len(changes))]
		bctx, cancel := context.WithTimeout(ctx, storeTimeout)
		err := r.store.SavePeerState(bctx, batch)
		cancel()
		if err != nil {
			return fmt.Errorf("failed to save state to the fleet's store (%s): %d peers not saved: %w", why, len(changes), err)
		}
		for _, st := range batch {
			s.saved[feature.Key(st.Key)] = st
		}
		changes = changes[len(batch):]
	}
	// Forget peers that are gone, so one that comes back is saved again.
	if len(s.saved) > len(peers) {
		present := make(map[feature.Key]bool, len(peers))
		for _, p := range peers {
			present[p.PublicKey] = true
		}
		for k := range s.saved {
			if !present[k] {
				delete(s.saved, k)
			}
		}
	}
	return nil
}

// storeLoop saves to the store every StoreInterval while up.
func (r *Restart) storeLoop() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.host.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	// A store that stays down is logged once, and again when it is back,
	// not at every interval.
	failing := false
	r.everyWhileUp(r.cfg.StoreInterval, func() {
		err := r.saveStore(ctx, "periodic")
		switch {
		case ctx.Err() != nil:
		case err != nil && !failing:
			r.host.Errorf("%v; retrying every %v", err, r.cfg.StoreInterval)
		case err == nil && failing:
			r.host.Verbosef("learned state saved to the fleet's store again")
		}
		failing = err != nil
	})
}

// saveStoreOnExit is the save of drain and Close: bounded, never
// cancelled by Close itself.
func (r *Restart) saveStoreOnExit(why string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*storeTimeout)
	defer cancel()
	return r.saveStore(ctx, why)
}

// takeoverEnabled reports whether a start without a usable state file reads the
// fleet's store.
func (r *Restart) takeoverEnabled() bool { return r.cfg.Takeover && r.store != nil }

// takeoverStateLocked reads the fleet's recent state for a start without
// a state file and returns it as a state file written now for own; nil
// when takeover is off or there is nothing to take over. Called with the
// startup lock held.
func (r *Restart) takeoverStateLocked(own feature.Key, now time.Time) *stateFile {
	if !r.takeoverEnabled() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), takeoverTimeout)
	defer cancel()
	// Only state written under this device's own key: a client answers
	// an initiation only from the key it configured, so another fleet's
	// (or a misconfigured machine's) state would cost initiations no
	// client answers. Rows written before stores recorded the writer's
	// key are not returned either.
	states, err := r.store.LoadPeerState(ctx, hooks.PublicKey(own), now.Add(-r.cfg.TakeoverWindow), takeoverLimit)
	if err != nil {
		r.host.Errorf("failed to take over the fleet's state (%d peers read): %v", len(states), err)
	}
	if len(states) == 0 {
		if err == nil {
			r.host.Verbosef("takeover: no peer of the fleet's store had a handshake with this gateway's key within %v", r.cfg.TakeoverWindow)
		}
		return nil
	}
	f, err := takeoverFile(own, states, now)
	if err != nil {
		r.host.Errorf("failed to take over the fleet's state: %v", err)
		return nil
	}
	r.host.Verbosef("takeover: %d peers of the fleet's store had a handshake within %v", len(f.Peers), r.cfg.TakeoverWindow)
	return f
}

// takeoverFile turns the store's states into a state file written at now
// for own: every entry in "peers" with no configured endpoint (so only
// configured peers without one of the operator's take it), and in the
// "jit" section (so the others are asked about and reinstalled). The
// first state of a key wins (the store lists the most recent first). It
// is pure.
func takeoverFile(own feature.Key, states []hooks.PeerState, now time.Time) (*stateFile, error) {
	f := &stateFile{Version: stateVersion, PublicKey: feature.EncodeKey(own), Written: now.UTC()}
	seen := make(map[hooks.PublicKey]bool, len(states))
	for _, st := range states {
		if seen[st.Key] || !st.Endpoint.IsValid() || st.Endpoint.Port() == 0 || st.LastHandshake.IsZero() || feature.Key(st.Key) == own {
			continue
		}
		seen[st.Key] = true
		ep := netip.AddrPortFrom(st.Endpoint.Addr().Unmap(), st.Endpoint.Port())
		f.Peers = append(f.Peers, statePeer{PublicKey: feature.EncodeKey(feature.Key(st.Key)), Endpoint: ep.String(), LastHandshake: st.LastHandshake.UTC()})
	}
	if len(f.Peers) == 0 {
		return nil, errors.New("no usable state")
	}
	// The "jit" section's entries are statePeer's first fields, as in
	// upgradeJITFlags.
	raw, err := json.Marshal(struct {
		Peers []statePeer `json:"peers"`
	}{f.Peers})
	if err != nil {
		return nil, err
	}
	f.Sections = map[string]json.RawMessage{"jit": raw}
	return f, nil
}

package jit

// Mass arrival: when many new clients knock at once (a gateway restart,
// a backend failover), their lookups and installs are batched. The flow,
// in order:
//
//  1. handle queues each miss (its initiation held) and starts a batcher
//     when fewer than maxBatchers run, so a lone first contact finds one
//     at once: nothing waits to gather more.
//  2. A batcher takes every miss already waiting, up to maxBatch, and asks
//     the provider about them together (lookupMany): one LookupPeers call
//     when the provider is a hooks.BatchProvider, else concurrent
//     LookupPeer calls; either way each call takes a lookup slot
//     (MaxLookups), so a batch counts as one.
//  3. The answers pass the rules every answer follows (applyAnswers: a
//     static peer's key or allowed IPs refused, the cap) and are installed
//     by one Host.Configure for all of them.
//  4. Each installed key's held initiation is re-injected, and the device
//     answers it.
//
// maxBatch keeps what the batchers re-inject at once (maxBatchers ×
// maxBatch) below upstream's under-load threshold (128 handshakes
// queued), past which it answers with cookies instead of responses and
// the clients retransmit.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
)

const (
	// maxBatch bounds the keys of one batch: one provider call, one
	// install transaction.
	maxBatch = 32
	// maxBatchers bounds the batches under way: one can look up while
	// another installs.
	maxBatchers = 2
)

// miss is a key waiting for its lookup, its initiation held.
type miss struct {
	key feature.Key
	src netip.AddrPort
}

// lookupResult is the answer about one key.
type lookupResult struct {
	cfg hooks.PeerConfig
	err error
}

// answer is a provider's configuration for key, to install.
type answer struct {
	key feature.Key
	cfg hooks.PeerConfig
}

// queueMissLocked queues a miss for the batchers and says whether a new
// batcher must be started (the caller starts it after unlocking mu).
func (j *JIT) queueMissLocked(m miss) (start bool) {
	j.pending = append(j.pending, m)
	if j.batchers < maxBatchers {
		j.batchers++
		return true
	}
	return false
}

// batchLoop provisions the waiting misses, maxBatch at a time, until none
// is left.
func (j *JIT) batchLoop() {
	for {
		j.mu.Lock()
		n := min(len(j.pending), maxBatch)
		if n == 0 {
			j.batchers--
			j.pending = nil // let the array of a large arrival go
			j.mu.Unlock()
			return
		}
		batch := slices.Clone(j.pending[:n])
		j.pending = j.pending[n:]
		j.mu.Unlock()
		j.provisionBatch(batch)
	}
}

// provisionBatch looks batch up, installs the keys the provider knows,
// then re-injects each one's newest held initiation. It runs on a
// batcher, never a receive goroutine.
func (j *JIT) provisionBatch(batch []miss) {
	started := time.Now()
	keys := make([]feature.Key, len(batch))
	for i, m := range batch {
		keys[i] = m.key
	}
	res := j.lookupMany(keys)
	var answers []answer
	var at []int // batch index of each answer
	for i, m := range batch {
		key, err := m.key, res[i].err
		switch {
		case errors.Is(err, hooks.ErrUnknownPeer):
			j.setNegative(key, j.cfg.NegativeTTL)
			j.host.Verbosef("jit: %s from %s unknown to the provider", feature.ShortKey(key), m.src)
			j.event(hooks.PeerEvent{Kind: hooks.PeerRefused, Key: hooks.PublicKey(key)})
		case err != nil:
			j.setNegative(key, j.cfg.ErrorRetry)
			j.fails.failed(j.host.Errorf, key, fmt.Sprintf("jit: %s not installed: %v", feature.ShortKey(key), err), time.Now())
			j.event(hooks.PeerEvent{Kind: hooks.PeerLookupFailed, Key: hooks.PublicKey(key), Err: err})
		case j.removedSince(key, started):
			j.host.Verbosef("jit: %s removed while it was being looked up; not installed", feature.ShortKey(key))
		default:
			answers = append(answers, answer{key, res[i].cfg})
			at = append(at, i)
		}
	}
	installed := make([]bool, len(batch))
	for n, err := range j.applyAnswers(answers) {
		key := answers[n].key
		if err != nil {
			j.answerRefused(key, err, fmt.Sprintf("initiation from %s dropped", batch[at[n]].src))
			j.setNegative(key, j.cfg.ErrorRetry)
			continue
		}
		j.c.PeersInstalled.Add(1)
		installed[at[n]] = true
	}
	for i, m := range batch {
		h, ok := j.lookupDone(m.key)
		if !installed[i] {
			continue
		}
		j.answerInstalled(m.key, m.src, h, ok, res[i].cfg.PersistentKeepalive)
	}
}

// answerInstalled reports key installed and answers its held initiation
// h (ok: there is one), unless it is too old to matter.
func (j *JIT) answerInstalled(key feature.Key, src netip.AddrPort, h heldInit, ok bool, keepalive time.Duration) {
	lat := time.Duration(0)
	if ok {
		lat = time.Since(h.job.at)
	}
	j.host.Verbosef("jit: %s installed for %s in %v", feature.ShortKey(key), src, lat.Round(time.Microsecond))
	j.event(hooks.PeerEvent{Kind: hooks.PeerInstalled, Key: hooks.PublicKey(key), Latency: lat})
	if !ok || lat > j.cfg.HoldTimeout {
		return
	}
	if keepalive == 0 {
		j.inject(h.job)
		return
	}
	// answerHeld waits for the device's answer before the keepalive:
	// the rest of the batch does not wait with it.
	j.host.Go(func() { j.answerHeld(key, h.job, keepalive) })
}

// lookupMany asks the provider about keys, merging each with an ask of
// the same key already under way (revalidation, a restore), and returns
// one validated answer per key, in order. A lone key is asked as lookup
// asks it.
func (j *JIT) lookupMany(keys []feature.Key) []lookupResult {
	if len(keys) == 1 {
		cfg, err := j.lookup(keys[0])
		return []lookupResult{{cfg, err}}
	}
	return j.merged(keys, j.callProviderMany)
}

// merged answers each of keys with the ask of that key already under way,
// or else with ask, called once with every key not yet asked.
func (j *JIT) merged(keys []feature.Key, ask func([]feature.Key) []lookupResult) []lookupResult {
	calls := make([]*lookupCall, len(keys))
	var mine []feature.Key
	var mineCalls []*lookupCall
	j.mu.Lock()
	for i, k := range keys {
		if c, ok := j.calls[k]; ok {
			calls[i] = c
			continue
		}
		c := &lookupCall{done: make(chan struct{})}
		j.calls[k] = c
		calls[i] = c
		mine = append(mine, k)
		mineCalls = append(mineCalls, c)
	}
	j.mu.Unlock()

	if len(mine) > 0 {
		res := ask(mine)
		for n, c := range mineCalls {
			c.cfg, c.err = res[n].cfg, res[n].err
			close(c.done)
		}
		j.mu.Lock()
		for _, k := range mine {
			delete(j.calls, k)
		}
		j.mu.Unlock()
	}
	out := make([]lookupResult, len(keys))
	for i, c := range calls {
		select {
		case <-c.done:
			out[i] = lookupResult{c.cfg, c.err}
		case <-j.ctx.Done():
			out[i].err = fmt.Errorf("failed to look up %s: %w", feature.ShortKey(keys[i]), j.ctx.Err())
		}
	}
	return out
}

// callProviderMany asks the provider about keys (no duplicates, at most
// maxBatch): in one call when it is a hooks.BatchProvider, else one call
// per key, concurrently. Each call takes a lookup slot; the lookups are
// counted per key.
func (j *JIT) callProviderMany(keys []feature.Key) []lookupResult {
	start := time.Now()
	var res []lookupResult
	if bp, ok := j.cfg.Provider.(hooks.BatchProvider); ok {
		res = j.callBatch(bp, keys)
	} else {
		res = make([]lookupResult, len(keys))
		var wg sync.WaitGroup
		for i, k := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i].cfg, res[i].err = withSlot(j, k, func() (hooks.PeerConfig, error) { return j.callProvider(k) })
			}()
		}
		wg.Wait()
	}
	lat := uint64(time.Since(start))
	for _, r := range res {
		j.countLookup(lat, r.err)
	}
	return res
}

// callBatch is one LookupPeers call for keys, its answers checked and
// validated as LookupPeer's are.
func (j *JIT) callBatch(bp hooks.BatchProvider, keys []feature.Key) []lookupResult {
	pub := make([]hooks.PublicKey, len(keys))
	for i, k := range keys {
		pub[i] = hooks.PublicKey(k)
	}
	got, err := withSlot(j, keys[0], func() ([]hooks.PeerResult, error) {
		return timedCall(j, func(ctx context.Context) ([]hooks.PeerResult, error) {
			return bp.LookupPeers(ctx, pub)
		})
	})
	if err == nil && len(got) != len(keys) {
		err = fmt.Errorf("the provider answered %d of %d keys", len(got), len(keys))
	}
	res := make([]lookupResult, len(keys))
	for i, k := range keys {
		if err != nil {
			res[i].err = fmt.Errorf("failed to look up %s: %w", feature.ShortKey(k), err)
			continue
		}
		res[i].cfg, res[i].err = j.checkAnswer(k, got[i].Config, got[i].Err)
	}
	return res
}

// withSlot runs call within a lookup slot (MaxLookups), waiting for one;
// the device closing ends the wait.
func withSlot[T any](j *JIT, key feature.Key, call func() (T, error)) (T, error) {
	select {
	case j.slots <- struct{}{}:
	case <-j.ctx.Done():
		var zero T
		return zero, fmt.Errorf("failed to look up %s: %w", feature.ShortKey(key), j.ctx.Err())
	}
	defer func() { <-j.slots }()
	return call()
}

// applyAnswers installs or updates each key with its provider's answer
// (applyAnswer's rules, each answer on its own), all in one
// Host.Configure, and returns one error per answer (nil: applied).
func (j *JIT) applyAnswers(as []answer) []error {
	errs := make([]error, len(as))
	if len(as) == 0 {
		return errs
	}
	j.installMu.Lock()
	defer j.installMu.Unlock()
	exists := make([]bool, len(as))
	j.mu.Lock()
	for i, a := range as {
		_, exists[i] = j.peers[a.key]
	}
	j.mu.Unlock()
	var ok []int // answers that pass the rules
	fresh := 0
	for i, a := range as {
		if !exists[i] && j.host.HasPeer(a.key) {
			errs[i] = fmt.Errorf("failed to install peer %s: provider's answer refused: it is a static peer", feature.ShortKey(a.key))
			continue
		}
		if err := j.static.check(a.key, a.cfg.AllowedIPs); err != nil {
			errs[i] = fmt.Errorf("failed to install peer %s: provider's answer refused: %w", feature.ShortKey(a.key), err)
			continue
		}
		ok = append(ok, i)
		if !exists[i] {
			fresh++
		}
	}
	ok = j.makeRoomLocked(as, exists, ok, fresh, errs)
	if len(ok) == 0 {
		return errs
	}

	c := feature.Config{Peers: make([]feature.PeerConfig, 0, len(ok))}
	for _, i := range ok {
		applied := as[i].cfg
		if !exists[i] {
			applied.PersistentKeepalive = 0 // see provision's answerHeld
		}
		c.Peers = append(c.Peers, InstallConfig(as[i].key, applied))
	}
	began := time.Now()
	err := j.host.Configure(j.Name(), c)
	j.c.InstallTransactions.Add(1)
	j.c.InstallNanos.Add(uint64(time.Since(began)))
	if err != nil {
		if len(ok) == 1 {
			errs[ok[0]] = fmt.Errorf("failed to install peer %s: %w", feature.ShortKey(as[ok[0]].key), err)
		} else {
			// Upstream stops at the first peer it refuses: apply them
			// one by one, so one bad answer costs only its own peer.
			for n, i := range ok {
				one := feature.Config{Peers: []feature.PeerConfig{c.Peers[n]}}
				if err := j.host.Configure(j.Name(), one); err != nil {
					errs[i] = fmt.Errorf("failed to install peer %s: %w", feature.ShortKey(as[i].key), err)
				}
			}
		}
	}
	for _, i := range ok {
		if errs[i] == nil {
			j.mark(as[i].key, true)
		}
	}
	j.mu.Lock()
	for _, i := range ok {
		if p := j.peers[as[i].key]; p != nil && errs[i] == nil {
			p.cfg = as[i].cfg
		}
	}
	j.mu.Unlock()
	return errs
}

// makeRoomLocked evicts the least recently active just-in-time peers (none
// of as) so that fresh new ones fit under the cap, and refuses the new
// ones that still do not (a batch larger than the cap). installMu is
// held. It returns the answers left to install.
func (j *JIT) makeRoomLocked(as []answer, exists []bool, ok []int, fresh int, errs []error) []int {
	if fresh == 0 {
		return ok
	}
	j.mu.Lock()
	over := len(j.peers) + fresh - j.cfg.MaxPeers
	var victims []feature.Key
	if over > 0 {
		inBatch := make(map[feature.Key]bool, len(as))
		for _, a := range as {
			inBatch[a.key] = true
		}
		for _, k := range j.leastActiveLocked(over + len(as)) {
			if len(victims) == over {
				break
			}
			if !inBatch[k] {
				victims = append(victims, k)
			}
		}
	}
	room := j.cfg.MaxPeers - (len(j.peers) - len(victims))
	j.mu.Unlock()
	if len(victims) > 0 {
		j.evict(victims, "cap")
	}
	if fresh <= room {
		return ok
	}
	kept := ok[:0:0]
	for _, i := range ok {
		if !exists[i] {
			if room <= 0 {
				errs[i] = fmt.Errorf("failed to install peer %s: %d just-in-time peers are the cap", feature.ShortKey(as[i].key), j.cfg.MaxPeers)
				continue
			}
			room--
		}
		kept = append(kept, i)
	}
	return kept
}

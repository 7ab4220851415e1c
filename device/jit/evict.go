package jit

// Housekeeping of just-in-time peers: idle eviction, the cap's least
// recently active choice, revalidation with the provider, and expiry of
// the caches in provision.go. One goroutine (housekeep) drives it all;
// revalidation passes run on a goroutine of their own so a slow provider
// never delays eviction; it also logs the summaries of repeated failure
// lines (faillog.go).
//
// Activity is read from upstream's own counters (one Host.View per
// sweep, only while some peer has been quiet for half the idle time): the last handshake time, and
// rx/tx bytes compared with the previous look. A live session handshakes
// at least every 3 minutes, so the handshake time alone already tells a
// live peer from an idle one at the default idle time; traffic covers the
// rest.

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
)

// revalidateWorkers bounds concurrent revalidation lookups.
const revalidateWorkers = 4

// sweepInterval is how often housekeeping looks at peers and caches: a
// quarter of the shortest period it enforces, within [50 ms, 30 s].
func (j *JIT) sweepInterval() time.Duration {
	iv := 30 * time.Second
	for _, p := range []time.Duration{j.cfg.IdleTimeout, j.cfg.RevalidateInterval, j.cfg.NegativeTTL} {
		if p > 0 && p/4 < iv {
			iv = p / 4
		}
	}
	return max(iv, 50*time.Millisecond)
}

func (j *JIT) housekeep() {
	sweep := time.NewTicker(j.sweepInterval())
	defer sweep.Stop()
	watch := time.NewTimer(time.Hour)
	watch.Stop()
	armed := false
	lastRevalidate := time.Now()
	for {
		select {
		case <-j.host.Done():
			watch.Stop()
			return
		case <-j.kick:
			if !armed {
				watch.Reset(watchAfter)
				armed = true
			}
		case now := <-watch.C:
			due, more := j.watch.unanswered(now)
			j.redecode(due)
			armed = more
			if more {
				watch.Reset(watchAfter / 2)
			}
		case now := <-sweep.C:
			j.expireCaches(now)
			j.fails.flush(now)
			if j.cfg.IdleTimeout > 0 {
				j.evictIdle(now)
			}
			if j.cfg.RevalidateInterval > 0 && now.Sub(lastRevalidate) >= j.cfg.RevalidateInterval {
				lastRevalidate = now
				j.startRevalidation()
			}
		}
	}
}

func (j *JIT) expireCaches(now time.Time) {
	j.mu.Lock()
	for k, until := range j.negative {
		if now.After(until) {
			delete(j.negative, k)
		}
	}
	for k, at := range j.removed {
		if now.Sub(at) > removedMemory {
			delete(j.removed, k)
		}
	}
	for k, h := range j.held {
		if _, busy := j.provisioning[k]; !busy && now.Sub(h.job.at) > j.cfg.HoldTimeout {
			delete(j.held, k)
		}
	}
	j.mu.Unlock()
}

// evictIdle removes the just-in-time peers idle for longer than
// IdleTimeout. Upstream's counters are read only when some peer has been
// quiet for half the idle time by our own record: that first read is its
// baseline, later ones see whether its counters moved.
func (j *JIT) evictIdle(now time.Time) {
	idle := j.cfg.IdleTimeout
	if !j.anyQuiet(now, idle/2) {
		return
	}
	acts, err := j.readActivity()
	if err != nil {
		j.host.Errorf("jit: failed to read peer activity: %v", err)
		return
	}
	var victims []feature.Key
	j.mu.Lock()
	for k, p := range j.peers {
		if a, ok := acts[k]; ok {
			if a.handshake.After(p.lastActive) {
				p.lastActive = a.handshake
			}
			baseline := p.rx >= 0
			if baseline && (a.rx != p.rx || a.tx != p.tx) {
				p.lastActive = now
			}
			p.rx, p.tx = a.rx, a.tx
			if !baseline {
				continue
			}
		}
		if now.Sub(p.lastActive) > idle {
			victims = append(victims, k)
		}
	}
	j.mu.Unlock()
	if len(victims) > 0 {
		j.evict(victims, "idle")
	}
}

func (j *JIT) anyQuiet(now time.Time, quiet time.Duration) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, p := range j.peers {
		if now.Sub(p.lastActive) > quiet {
			return true
		}
	}
	return false
}

// leastActiveLocked returns the n just-in-time peers least recently
// active.
func (j *JIT) leastActiveLocked(n int) []feature.Key {
	type cand struct {
		k feature.Key
		t time.Time
	}
	all := make([]cand, 0, len(j.peers))
	for k, p := range j.peers {
		all = append(all, cand{k, p.lastActive})
	}
	slices.SortFunc(all, func(a, b cand) int { return a.t.Compare(b.t) })
	out := make([]feature.Key, 0, n)
	for i := 0; i < n && i < len(all); i++ {
		out = append(out, all[i].k)
	}
	return out
}

// evict removes keys from the device in one transaction.
func (j *JIT) evict(keys []feature.Key, reason string) {
	if err := j.remove(keys); err != nil {
		j.host.Errorf("jit: failed to evict %d peers: %v", len(keys), err)
		return
	}
	j.c.PeersEvicted.Add(uint64(len(keys)))
	for _, k := range keys {
		j.host.Verbosef("jit: %s evicted (%s)", feature.ShortKey(k), reason)
		j.event(hooks.PeerEvent{Kind: hooks.PeerEvicted, Key: hooks.PublicKey(k), Reason: reason})
	}
}

// remove takes keys off the device through the host, so the peer set and
// Configured (which forgets their state) see it.
func (j *JIT) remove(keys []feature.Key) error {
	c := feature.Config{Peers: make([]feature.PeerConfig, 0, len(keys))}
	for _, k := range keys {
		c.Peers = append(c.Peers, feature.PeerConfig{PublicKey: k, Remove: true})
	}
	return j.host.Configure(j.Name(), c)
}

type activity struct {
	handshake time.Time
	rx, tx    int64
}

// readActivity reads the just-in-time peers' last handshake and byte
// counters from upstream.
func (j *JIT) readActivity() (map[feature.Key]activity, error) {
	v, err := j.host.View()
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return activityOf(&v, j.peers), nil
}

// activityOf picks the activity of peers out of v. It is pure.
func activityOf(v *feature.View, peers map[feature.Key]*jitPeer) map[feature.Key]activity {
	out := make(map[feature.Key]activity, len(peers))
	for _, p := range v.Peers {
		if _, ok := peers[p.PublicKey]; ok {
			out[p.PublicKey] = activity{handshake: p.Handshake, rx: int64(p.Rx), tx: int64(p.Tx)}
		}
	}
	return out
}

func (j *JIT) startRevalidation() {
	j.mu.Lock()
	if j.revalidating || len(j.peers) == 0 {
		j.mu.Unlock()
		return
	}
	j.revalidating = true
	keys := make([]feature.Key, 0, len(j.peers))
	for k := range j.peers {
		keys = append(keys, k)
	}
	j.mu.Unlock()
	j.host.Go(func() {
		defer func() {
			j.mu.Lock()
			j.revalidating = false
			j.mu.Unlock()
		}()
		j.revalidate(keys)
	})
}

// revalidate asks the provider again about each key: unknown removes the
// peer (revocation), a changed answer is applied under the rules of a
// first install (applyAnswer), an error or a refused change keeps it.
func (j *JIT) revalidate(keys []feature.Key) {
	work := make(chan feature.Key)
	done := make(chan struct{})
	for i := 0; i < revalidateWorkers; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for k := range work {
				j.revalidateOne(k)
			}
		}()
	}
feed:
	for _, k := range keys {
		select {
		case work <- k:
		case <-j.host.Done():
			break feed
		}
	}
	close(work)
	for i := 0; i < revalidateWorkers; i++ {
		<-done
	}
}

func (j *JIT) revalidateOne(key feature.Key) {
	if !j.isJIT(key) {
		return
	}
	started := time.Now()
	cfg, err := j.lookup(key)
	switch {
	case errors.Is(err, hooks.ErrUnknownPeer):
		if j.removedSince(key, started) || !j.isJIT(key) {
			return
		}
		if err := j.remove([]feature.Key{key}); err != nil {
			j.host.Errorf("jit: failed to remove revoked %s: %v", feature.ShortKey(key), err)
			return
		}
		j.setNegative(key, j.cfg.NegativeTTL)
		j.host.Verbosef("jit: %s revoked by the provider, removed", feature.ShortKey(key))
		j.event(hooks.PeerEvent{Kind: hooks.PeerRevoked, Key: hooks.PublicKey(key), Reason: "revalidation"})
	case err != nil:
		j.fails.failed(j.host.Verbosef, key, fmt.Sprintf("jit: %s kept, revalidation failed: %v", feature.ShortKey(key), err), time.Now())
	default:
		j.mu.Lock()
		p := j.peers[key]
		same := p == nil || p.cfg.Equal(cfg)
		j.mu.Unlock()
		if same || j.removedSince(key, started) {
			return
		}
		// A refused or failed change keeps the peer as it was, as a
		// failed lookup does.
		if !j.applyLooked(key, cfg, fmt.Sprintf("%s kept, its change not applied", feature.ShortKey(key))) {
			return
		}
		j.host.Verbosef("jit: %s updated from the provider", feature.ShortKey(key))
		j.event(hooks.PeerEvent{Kind: hooks.PeerUpdated, Key: hooks.PublicKey(key)})
	}
}

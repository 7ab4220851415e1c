package device

// Just-in-time peers across restarts. The state file marks the peers the
// old process had installed just in time ("jit": true, with the endpoint
// last in use). They are not in the new process's configuration, so the
// static restore (state.go) skips them; without more, their clients come
// back only when their own timers fire (about 15 s after their data goes
// unanswered, never while idle). At start-up, in order:
//
//  1. restoreJITLocked (startup lock held, before upstream's Up, or when
//     the key arrives) picks the entries to restore: marked jit, with a
//     handshake not older than StateMaxAge, not installed already, most
//     recent first, at most JITConfig.MaxPeers. It marks each key as
//     queued for the restore and starts one background goroutine: Up
//     never waits for the provider. A client whose initiation arrives
//     while its key is still queued is provisioned at once through the
//     normal path, ahead of the queue, and the restore skips it.
//  2. restoreJIT asks the provider about each key again, jitRestoreLookups
//     at a time, through the JIT lookup (merged, timed, validated), for
//     at most JITConfig.RestoreDeadline in all: clients not reached by
//     then come back through the normal path when they knock. The key is
//     marked as being provisioned while its lookup runs, so an initiation
//     the client sends meanwhile is held, not provisioned a second time.
//     The provider is the authority: a key it no longer knows, or a
//     failed lookup, is not restored.
//  3. A known key is installed through the JIT install path (static-route
//     protection, the cap, eviction and revalidation apply) with the
//     saved endpoint instead of the provider's.
//  4. The peer then gets exactly one handshake initiation, as the startup
//     broadcast would send it, so its client's session resumes at once.
//     A client that has just sent us an initiation gets none (handshakes
//     would cross): its held initiation is answered instead.
//  5. One summary line: restored, no longer known, lookups failed.

import (
	"errors"
	"net/netip"
	"sort"
	"sync"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"wghooks/hooks"
)

// jitRestoreLookups bounds the provider lookups a restore runs at once,
// leaving the JIT lookup slots (MaxLookups) to clients that arrive on
// their own meanwhile.
const jitRestoreLookups = 8

// jitRestoreItem is one just-in-time peer to ask the provider about.
type jitRestoreItem struct {
	pk            wgdevice.NoisePublicKey
	endpoint      netip.AddrPort
	lastHandshake time.Time
}

// planJITRestore picks the just-in-time entries of f to restore: those
// with a handshake within maxAge of now, not installed already (has),
// most recent first, at most max. It is pure; f was validated by
// parseState. tooOld and overCap count what it left out.
func planJITRestore(f *stateFile, has func(wgdevice.NoisePublicKey) bool, now time.Time, maxAge time.Duration, max int) (items []jitRestoreItem, tooOld, overCap int) {
	seen := make(map[wgdevice.NoisePublicKey]bool)
	for _, e := range f.Peers {
		if !e.JIT {
			continue
		}
		pk, _ := decodeKey(e.PublicKey)
		switch {
		case seen[pk] || has(pk):
			continue
		case e.LastHandshake.IsZero() || now.Sub(e.LastHandshake) > maxAge:
			tooOld++
			continue
		}
		seen[pk] = true
		ap, _ := netip.ParseAddrPort(e.Endpoint)
		items = append(items, jitRestoreItem{pk: pk, endpoint: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), lastHandshake: e.LastHandshake})
	}
	sort.SliceStable(items, func(i, k int) bool { return items[i].lastHandshake.After(items[k].lastHandshake) })
	if len(items) > max {
		overCap = len(items) - max
		items = items[:max]
	}
	return items, tooOld, overCap
}

// restoreJITLocked starts restoring the just-in-time peers of f. It runs
// with the startup lock held, from restoreLocked, and returns at once.
func (r *restart) restoreJITLocked(f *stateFile) {
	j := r.d.jit
	if !j.enabled() {
		n := 0
		for _, e := range f.Peers {
			if e.JIT {
				n++
			}
		}
		if n > 0 {
			r.d.log.Verbosef("state file lists %d just-in-time peers; no provider: not restored", n)
		}
		return
	}
	items, tooOld, overCap := planJITRestore(f, r.d.HasPeer, time.Now(), r.cfg.StateMaxAge, j.cfg.MaxPeers)
	if tooOld > 0 || overCap > 0 {
		r.d.log.Verbosef("state file: %d just-in-time peers not restored: %d without a handshake within %v, %d over the cap of %d",
			tooOld+overCap, tooOld, r.cfg.StateMaxAge, overCap, j.cfg.MaxPeers)
	}
	if len(items) == 0 {
		return
	}
	// Queue the keys before the sockets open.
	j.mu.Lock()
	queued := items[:0]
	for _, it := range items {
		if _, busy := j.provisioning[it.pk]; busy {
			continue
		}
		j.restoring[it.pk] = struct{}{}
		queued = append(queued, it)
	}
	j.mu.Unlock()
	r.d.goroutine(func() { r.restoreJIT(queued) })
}

// jitRestoreOutcome is what became of one restored entry.
type jitRestoreOutcome int

const (
	jitRestored jitRestoreOutcome = iota
	jitUnknown
	jitFailed
	jitSkipped  // removed meanwhile, or the device closed
	jitCameBack // the client knocked first and was provisioned on its own
	jitLate     // not reached within JITConfig.RestoreDeadline
)

// restoreJIT looks up and reinstalls items, jitRestoreLookups at a time,
// then logs the summary. It runs on its own goroutine.
func (r *restart) restoreJIT(items []jitRestoreItem) {
	started := time.Now()
	// Started from beforeUp: an initiation sent before upstream's sockets
	// open would be lost and still count against its 5 s limit.
	if !r.waitUp(jitRestoreUpWait) {
		r.d.jit.release(items)
		r.d.log.Errorf("failed to restore %d just-in-time peers from the state file: the device did not come up", len(items))
		return
	}
	work := make(chan jitRestoreItem)
	var mu sync.Mutex
	counts := make(map[jitRestoreOutcome]int)
	var wg sync.WaitGroup
	for i := 0; i < min(jitRestoreLookups, len(items)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				o := r.restoreJITPeer(it, started)
				mu.Lock()
				counts[o]++
				mu.Unlock()
			}
		}()
	}
	limit := r.d.jit.cfg.RestoreDeadline
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
feed:
	for i, it := range items {
		select {
		case work <- it:
		case <-r.d.done:
			r.d.jit.release(items[i:])
			close(work)
			wg.Wait()
			return
		case <-deadline.C:
			n := r.d.jit.release(items[i:])
			mu.Lock()
			counts[jitLate] += n
			counts[jitCameBack] += len(items) - i - n
			mu.Unlock()
			r.d.log.Errorf("restoring just-in-time peers took over %v: %d left for their clients to bring back", limit, n)
			break feed
		}
	}
	close(work)
	wg.Wait()
	r.d.log.Verbosef("restored %d just-in-time peers from the state file, %d no longer known, %d lookups failed, %d came back first (%d skipped, %d not reached) in %v",
		counts[jitRestored], counts[jitUnknown], counts[jitFailed], counts[jitCameBack], counts[jitSkipped], counts[jitLate],
		time.Since(started).Round(time.Millisecond))
}

// jitRestoreUpWait bounds how long a restore waits for the Up that
// started it to finish.
const jitRestoreUpWait = 5 * time.Second

// waitUp waits up to limit for the device to be up, polling; false if it
// is not (Up failed, or the device closed).
func (r *restart) waitUp(limit time.Duration) bool {
	const every = 10 * time.Millisecond
	for i := 0; i <= int(limit/every); i++ {
		if r.d.IsUp() {
			return true
		}
		select {
		case <-r.d.done:
			return false
		case <-time.After(every):
		}
	}
	return false
}

// release takes items that no lookup started for off the restore's
// queue, and returns how many were still on it (the others' clients
// knocked first).
func (j *jit) release(items []jitRestoreItem) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for _, it := range items {
		if _, queued := j.restoring[it.pk]; queued {
			delete(j.restoring, it.pk)
			n++
		}
	}
	return n
}

// restoreJITPeer asks the provider about one entry and, if it still knows
// the key, installs the peer at its saved endpoint and sends it one
// initiation (or answers the one it sent meanwhile).
func (r *restart) restoreJITPeer(it jitRestoreItem, started time.Time) jitRestoreOutcome {
	j := r.d.jit
	key := it.pk
	j.mu.Lock()
	_, queued := j.restoring[key]
	delete(j.restoring, key)
	installed := r.d.HasPeer(key) // meanwhile: by an outbound packet, or by hand
	if queued && !installed {
		j.provisioning[key] = struct{}{}
	}
	j.mu.Unlock()
	if !queued || installed {
		return jitCameBack
	}
	cfg, err := j.lookup(key)
	outcome := jitRestored
	switch {
	case errors.Is(err, hooks.ErrUnknownPeer):
		j.setNegative(key, j.cfg.NegativeTTL)
		r.d.log.Verbosef("%s - just-in-time peer not restored: unknown to the provider now", shortKey(key))
		j.event(hooks.PeerEvent{Kind: hooks.PeerRefused, Key: hooks.PublicKey(key)})
		outcome = jitUnknown
	case err != nil:
		r.d.log.Errorf("%s - just-in-time peer not restored: %v", shortKey(key), err)
		j.event(hooks.PeerEvent{Kind: hooks.PeerLookupFailed, Key: hooks.PublicKey(key), Err: err})
		outcome = jitFailed
	case j.removedSince(key, started):
		r.d.log.Verbosef("%s - just-in-time peer not restored: removed meanwhile", shortKey(key))
		outcome = jitSkipped
	default:
		cfg.Endpoint = it.endpoint // where the client was last, not where the provider thinks
		if !j.installLooked(key, cfg, "just-in-time peer not restored") {
			outcome = jitFailed
		}
	}
	h, held := j.lookupDone(key)
	if outcome != jitRestored {
		return outcome
	}
	r.state.Lock()
	r.state.carried[key] = restoreItem{pk: key, endpoint: normalizeEndpoint(it.endpoint.String()), lastHandshake: it.lastHandshake}
	r.state.Unlock()
	j.event(hooks.PeerEvent{Kind: hooks.PeerInstalled, Key: hooks.PublicKey(key), Reason: "restored"})

	if held && time.Since(h.job.at) <= j.cfg.HoldTimeout {
		// The client is handshaking with us already: answer it, never
		// cross it with an initiation of ours.
		r.d.log.Verbosef("%s - just-in-time peer restored at %s; answering its own initiation", shortKey(key), it.endpoint)
		j.answerHeld(key, h.job, cfg.PersistentKeepalive)
		return jitRestored
	}
	sent := r.initiateOne(key, it.endpoint.String())
	r.d.log.Verbosef("%s - just-in-time peer restored at %s (last handshake %s), initiation sent: %v",
		shortKey(key), it.endpoint, it.lastHandshake.Format(time.RFC3339), sent)
	if cfg.PersistentKeepalive > 0 {
		// Upstream's 5 s limit keeps the keepalive's handshake from
		// doubling the one just sent.
		j.setKeepalive(key, cfg.PersistentKeepalive)
	}
	return jitRestored
}

// initiateOne sends one handshake initiation to the peer pk at endpoint,
// under the broadcast's rules: not if its address sent us an initiation
// in the last 5 s, and upstream's own 5 s limit applies.
func (r *restart) initiateOne(pk wgdevice.NoisePublicKey, endpoint string) bool {
	if r.recent.within(normalizeEndpoint(endpoint), wgdevice.RekeyTimeout) {
		return false
	}
	peer := r.d.wg.LookupPeer(pk)
	if peer == nil {
		return false
	}
	if err := peer.SendHandshakeInitiation(false); err != nil {
		r.d.log.Verbosef("%s - initiation: %v", shortKey(pk), err)
		return false
	}
	return true
}

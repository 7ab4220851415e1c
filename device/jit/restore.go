package jit

// Just-in-time peers across restarts. The feature keeps its own section
// of the state file (feature.StateSection, named "jit"):
//
//	{"peers": [{"public_key": "<base64>", "endpoint": "198.51.100.4:51820",
//	            "last_handshake": "2026-05-22T21:04:01Z"}]}
//
// listing the installed just-in-time peers with an endpoint (SaveState).
// They are not in the new process's configuration, so the restart's
// static restore skips them; without more, their clients come back only
// when their own timers fire (about 15 s after their data goes
// unanswered, never while idle). At start-up, in order:
//
//  1. RestoreState (called by the restart with its startup lock held,
//     before upstream's Up, or when the key arrives) picks the entries to
//     restore: with a handshake not older than the state file's max age,
//     not installed already, most recent first, at most Config.MaxPeers.
//     It marks each key as queued for the restore and starts one
//     background goroutine: Up never waits for the provider. A client
//     whose initiation arrives while its key is still queued is
//     provisioned at once through the normal path, ahead of the queue,
//     and the restore skips it.
//  2. restore asks the provider about each key again, restoreLookups at
//     a time, through the JIT lookup (merged, timed, validated), for at
//     most Config.RestoreDeadline in all: clients not reached by then come
//     back through the normal path when they knock. The key is marked as
//     being provisioned while its lookup runs, so an initiation the client
//     sends meanwhile is held, not provisioned a second time. The
//     provider is the authority: a key it no longer knows, or a failed
//     lookup, is not restored.
//  3. A known key is installed through applyAnswer, as every answer is
//     (static-route protection, the cap, eviction and revalidation apply),
//     with the saved endpoint instead of the provider's.
//  4. The peer then gets exactly one handshake initiation, as the startup
//     broadcast would send it, so its client's session resumes at once.
//     A client that has just sent us an initiation gets none (handshakes
//     would cross): its held initiation is answered instead.
//  5. One summary line: restored, no longer known, lookups failed.
//
// A restored peer that stays silent keeps its saved last handshake in the
// next file (Restore.Carry: the state file carries it, and the view
// SaveState gets has it), so a second restart before it speaks again
// still restores it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
)

var _ feature.StateSection = (*JIT)(nil)

// restoreLookups bounds the provider lookups a restore runs at once,
// leaving the JIT lookup slots (MaxLookups) to clients that arrive on
// their own meanwhile.
const restoreLookups = 8

// section is the feature's section of the state file.
type section struct {
	Peers []sectionPeer `json:"peers"`
}

type sectionPeer struct {
	PublicKey     string    `json:"public_key"`
	Endpoint      string    `json:"endpoint"`
	LastHandshake time.Time `json:"last_handshake,omitzero"`
}

// SaveState returns the section listing the installed just-in-time peers
// that have an endpoint; nil when there are none. It runs on the state
// writer's goroutine with the restart's state lock held, and takes mu.
func (j *JIT) SaveState(v *feature.View, _ time.Time) (json.RawMessage, error) {
	j.mu.Lock()
	var sec section
	for _, p := range v.Peers {
		if _, ok := j.peers[p.PublicKey]; !ok || p.Endpoint == "" {
			continue
		}
		hs := p.Handshake
		e := sectionPeer{PublicKey: feature.EncodeKey(p.PublicKey), Endpoint: p.Endpoint}
		if !hs.IsZero() {
			e.LastHandshake = hs.UTC()
		}
		sec.Peers = append(sec.Peers, e)
	}
	j.mu.Unlock()
	if len(sec.Peers) == 0 {
		return nil, nil
	}
	sort.Slice(sec.Peers, func(a, b int) bool { return sec.Peers[a].PublicKey < sec.Peers[b].PublicKey })
	return json.Marshal(&sec)
}

// parseSection decodes and validates the feature's section. It is pure.
func parseSection(data json.RawMessage) (*section, error) {
	var sec section
	if err := json.Unmarshal(data, &sec); err != nil {
		return nil, fmt.Errorf("failed to parse the jit section of the state file: %w", err)
	}
	for i, p := range sec.Peers {
		if _, err := feature.DecodeKey(p.PublicKey); err != nil {
			return nil, fmt.Errorf("failed to parse the jit section of the state file: peer %d: public_key %q: %w", i, p.PublicKey, err)
		}
		if _, err := netip.ParseAddrPort(p.Endpoint); err != nil {
			return nil, fmt.Errorf("failed to parse the jit section of the state file: peer %d: endpoint %q: %w", i, p.Endpoint, err)
		}
	}
	return &sec, nil
}

// restoreItem is one just-in-time peer to ask the provider about.
type restoreItem struct {
	pk            feature.Key
	endpoint      netip.AddrPort
	lastHandshake time.Time
}

// planRestore picks the entries of sec to restore: those with a
// handshake within maxAge of now, not installed already (has), most
// recent first, at most max. It is pure; sec was validated by
// parseSection. tooOld and overCap count what it left out.
func planRestore(sec *section, has func(feature.Key) bool, now time.Time, maxAge time.Duration, max int) (items []restoreItem, tooOld, overCap int) {
	seen := make(map[feature.Key]bool)
	for _, e := range sec.Peers {
		pk, _ := feature.DecodeKey(e.PublicKey)
		switch {
		case seen[pk] || has(pk):
			continue
		case e.LastHandshake.IsZero() || now.Sub(e.LastHandshake) > maxAge:
			tooOld++
			continue
		}
		seen[pk] = true
		ap, _ := netip.ParseAddrPort(e.Endpoint)
		items = append(items, restoreItem{pk: pk, endpoint: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), lastHandshake: e.LastHandshake})
	}
	sort.SliceStable(items, func(i, k int) bool { return items[i].lastHandshake.After(items[k].lastHandshake) })
	if len(items) > max {
		overCap = len(items) - max
		items = items[:max]
	}
	return items, tooOld, overCap
}

// RestoreState starts restoring the just-in-time peers of the section
// the previous process wrote. It runs with the restart's startup lock
// held and returns at once: the lookups run on a goroutine of their own.
func (j *JIT) RestoreState(data json.RawMessage, r feature.Restore) {
	sec, err := parseSection(data)
	if err != nil {
		j.host.Errorf("%v; just-in-time peers not restored", err)
		return
	}
	if !j.enabled() {
		if n := len(sec.Peers); n > 0 {
			j.host.Verbosef("state file lists %d just-in-time peers; no provider: not restored", n)
		}
		return
	}
	items, tooOld, overCap := planRestore(sec, j.host.HasPeer, time.Now(), r.MaxAge, j.cfg.MaxPeers)
	if tooOld > 0 || overCap > 0 {
		j.host.Verbosef("state file: %d just-in-time peers not restored: %d without a handshake within %v, %d over the cap of %d",
			tooOld+overCap, tooOld, r.MaxAge, overCap, j.cfg.MaxPeers)
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
	j.host.Go(func() { j.restore(queued, r) })
}

// restoreOutcome is what became of one restored entry.
type restoreOutcome int

const (
	restored restoreOutcome = iota
	unknown
	failed
	skipped  // removed meanwhile, or the device closed
	cameBack // the client knocked first and was provisioned on its own
	late     // not reached within Config.RestoreDeadline
)

// restore looks up and reinstalls items, restoreLookups at a time, then
// logs the summary. It runs on its own goroutine.
func (j *JIT) restore(items []restoreItem, r feature.Restore) {
	started := time.Now()
	// Started from BeforeUp: an initiation sent before upstream's sockets
	// open would be lost and still count against its 5 s limit.
	if !j.waitUp(restoreUpWait) {
		j.release(items)
		j.host.Errorf("failed to restore %d just-in-time peers from the state file: the device did not come up", len(items))
		return
	}
	work := make(chan restoreItem)
	var mu sync.Mutex
	counts := make(map[restoreOutcome]int)
	var wg sync.WaitGroup
	for i := 0; i < min(restoreLookups, len(items)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				o := j.restorePeer(it, started, r)
				mu.Lock()
				counts[o]++
				mu.Unlock()
			}
		}()
	}
	limit := j.cfg.RestoreDeadline
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
feed:
	for i, it := range items {
		select {
		case work <- it:
		case <-j.host.Done():
			j.release(items[i:])
			close(work)
			wg.Wait()
			return
		case <-deadline.C:
			n := j.release(items[i:])
			mu.Lock()
			counts[late] += n
			counts[cameBack] += len(items) - i - n
			mu.Unlock()
			j.host.Errorf("restoring just-in-time peers took over %v: %d left for their clients to bring back", limit, n)
			break feed
		}
	}
	close(work)
	wg.Wait()
	j.host.Verbosef("restored %d just-in-time peers from the state file, %d no longer known, %d lookups failed, %d came back first (%d skipped, %d not reached) in %v",
		counts[restored], counts[unknown], counts[failed], counts[cameBack], counts[skipped], counts[late],
		time.Since(started).Round(time.Millisecond))
}

// restoreUpWait bounds how long a restore waits for the Up that started
// it to finish.
const restoreUpWait = 5 * time.Second

// waitUp waits up to limit for the device to be up, polling; false if it
// is not (Up failed, or the device closed).
func (j *JIT) waitUp(limit time.Duration) bool {
	const every = 10 * time.Millisecond
	for i := 0; i <= int(limit/every); i++ {
		if j.host.IsUp() {
			return true
		}
		select {
		case <-j.host.Done():
			return false
		case <-time.After(every):
		}
	}
	return false
}

// release takes items that no lookup started for off the restore's
// queue, and returns how many were still on it (the others' clients
// knocked first).
func (j *JIT) release(items []restoreItem) int {
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

// restorePeer asks the provider about one entry and, if it still knows
// the key, installs the peer at its saved endpoint and sends it one
// initiation (or answers the one it sent meanwhile).
func (j *JIT) restorePeer(it restoreItem, started time.Time, r feature.Restore) restoreOutcome {
	key := it.pk
	j.mu.Lock()
	_, queued := j.restoring[key]
	delete(j.restoring, key)
	installed := j.host.HasPeer(key) // meanwhile: by an outbound packet, or by hand
	if queued && !installed {
		j.provisioning[key] = struct{}{}
	}
	j.mu.Unlock()
	if !queued || installed {
		return cameBack
	}
	cfg, err := j.lookup(key)
	outcome := restored
	switch {
	case errors.Is(err, hooks.ErrUnknownPeer):
		j.setNegative(key, j.cfg.NegativeTTL)
		j.host.Verbosef("%s - just-in-time peer not restored: unknown to the provider now", feature.ShortKey(key))
		j.event(hooks.PeerEvent{Kind: hooks.PeerRefused, Key: hooks.PublicKey(key)})
		outcome = unknown
	case err != nil:
		j.fails.failed(j.host.Errorf, key, fmt.Sprintf("%s - just-in-time peer not restored: %v", feature.ShortKey(key), err), time.Now())
		j.event(hooks.PeerEvent{Kind: hooks.PeerLookupFailed, Key: hooks.PublicKey(key), Err: err})
		outcome = failed
	case j.removedSince(key, started):
		j.host.Verbosef("%s - just-in-time peer not restored: removed meanwhile", feature.ShortKey(key))
		outcome = skipped
	default:
		cfg.Endpoint = it.endpoint // where the client was last, not where the provider thinks
		if !j.installLooked(key, cfg, "just-in-time peer not restored") {
			outcome = failed
		}
	}
	h, held := j.lookupDone(key)
	if outcome != restored {
		return outcome
	}
	endpoint := feature.NormalizeEndpoint(it.endpoint.String())
	if r.Carry != nil {
		r.Carry(key, endpoint, it.lastHandshake)
	}
	j.event(hooks.PeerEvent{Kind: hooks.PeerInstalled, Key: hooks.PublicKey(key), Reason: "restored"})

	if held && time.Since(h.job.at) <= j.cfg.HoldTimeout {
		// The client is handshaking with us already: answer it, never
		// cross it with an initiation of ours.
		j.host.Verbosef("%s - just-in-time peer restored at %s; answering its own initiation", feature.ShortKey(key), it.endpoint)
		j.answerHeld(key, h.job, cfg.PersistentKeepalive)
		return restored
	}
	sent := j.initiateOne(key, endpoint, r)
	j.host.Verbosef("%s - just-in-time peer restored at %s (last handshake %s), initiation sent: %v",
		feature.ShortKey(key), it.endpoint, it.lastHandshake.Format(time.RFC3339), sent)
	if cfg.PersistentKeepalive > 0 {
		// Upstream's 5 s limit keeps the keepalive's handshake from
		// doubling the one just sent.
		j.setKeepalive(key, cfg.PersistentKeepalive)
	}
	return restored
}

// initiateOne sends one handshake initiation to the peer pk at endpoint
// (normalized), under the broadcast's rules: not if its address sent us
// an initiation in the last 5 s, and upstream's own 5 s limit applies.
func (j *JIT) initiateOne(pk feature.Key, endpoint string, r feature.Restore) bool {
	if r.RecentInitiation != nil && r.RecentInitiation(endpoint, wgdevice.RekeyTimeout) {
		return false
	}
	peer := j.host.Upstream().LookupPeer(pk)
	if peer == nil {
		return false
	}
	if err := peer.SendHandshakeInitiation(false); err != nil {
		j.host.Verbosef("%s - initiation: %v", feature.ShortKey(pk), err)
		return false
	}
	return true
}

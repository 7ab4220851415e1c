package jit

// What the feature reads from configuration transactions, and its UAPI
// extension keys.

import (
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/uapi"
)

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

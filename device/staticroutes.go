package device

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"wghooks/uapi"
)

// staticRoutes tracks the allowed IPs of peers configured by hand, from
// the same set transactions that configure them, so that a provider's
// answer can never take a route away from one of them: upstream would
// simply move the prefix, and a buggy or compromised control plane could
// then redirect a static peer's traffic.
type staticRoutes struct {
	sync.Mutex
	byPeer map[noiseKey][]netip.Prefix
}

// apply follows one set transaction. Peers installed just in time (their
// transactions carry wghooks_jit) are not static and are skipped.
func (s *staticRoutes) apply(set *uapi.Set) {
	s.Lock()
	defer s.Unlock()
	if s.byPeer == nil || set.ReplacePeers {
		s.byPeer = make(map[noiseKey][]netip.Prefix)
	}
	for _, p := range set.Peers {
		key := noiseKey(p.PublicKey)
		if p.Remove || hasLine(p.Ext, "wghooks_jit") {
			delete(s.byPeer, key)
			continue
		}
		for _, l := range p.Lines {
			switch l.Key {
			case "replace_allowed_ips":
				delete(s.byPeer, key)
			case "allowed_ip":
				pfx, err := netip.ParsePrefix(strings.TrimPrefix(l.Value, "-"))
				if err != nil {
					continue // validated before; cannot happen
				}
				pfx = pfx.Masked()
				if strings.HasPrefix(l.Value, "-") {
					s.byPeer[key] = removePrefix(s.byPeer[key], pfx)
				} else {
					s.byPeer[key] = append(removePrefix(s.byPeer[key], pfx), pfx)
				}
			}
		}
	}
}

func removePrefix(list []netip.Prefix, p netip.Prefix) []netip.Prefix {
	out := list[:0]
	for _, q := range list {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}

// check refuses prefixes that overlap a static peer's allowed IPs, other
// than key's own.
func (s *staticRoutes) check(key noiseKey, prefixes []netip.Prefix) error {
	s.Lock()
	defer s.Unlock()
	for owner, list := range s.byPeer {
		if owner == key {
			continue
		}
		for _, q := range list {
			for _, p := range prefixes {
				if p.Overlaps(q) {
					return fmt.Errorf("allowed IP %s overlaps %s of static %s", p, q, shortKey(owner))
				}
			}
		}
	}
	return nil
}

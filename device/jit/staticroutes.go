package jit

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/uapi"
)

// staticRoutes tracks the allowed IPs of peers configured by hand, from
// the same set transactions that configure them, so that a provider's
// answer can never take a route away from one of them: upstream would
// simply move the prefix, and a buggy or compromised control plane could
// then redirect a static peer's traffic.
type staticRoutes struct {
	sync.Mutex
	byPeer map[feature.Key][]netip.Prefix
}

// apply follows one of the operator's set transactions (Configured passes
// no other: peers the features install are not static). A peer the
// operator marks wghooks_jit=true is not static either and is skipped.
func (s *staticRoutes) apply(set *uapi.Set) {
	s.Lock()
	defer s.Unlock()
	if s.byPeer == nil || set.ReplacePeers {
		s.byPeer = make(map[feature.Key][]netip.Prefix)
	}
	for _, p := range set.Peers {
		key := feature.Key(p.PublicKey)
		if p.Remove || lineValue(p.Ext, "wghooks_jit") == "true" {
			delete(s.byPeer, key)
			continue
		}
		eachAllowedIPChange(p, func(c allowedIPChange) {
			switch {
			case c.replace:
				delete(s.byPeer, key)
			case c.remove:
				s.byPeer[key] = removePrefix(s.byPeer[key], c.prefix)
			default:
				s.byPeer[key] = append(removePrefix(s.byPeer[key], c.prefix), c.prefix)
			}
		})
	}
}

// allowedIPChange is one change a set transaction makes to a peer's
// allowed IPs: all replaced, or one prefix (masked) added or removed.
type allowedIPChange struct {
	replace bool
	remove  bool
	prefix  netip.Prefix
}

// eachAllowedIPChange calls fn for p's replace_allowed_ips and allowed_ip
// lines, in order. The transaction was validated whole before.
func eachAllowedIPChange(p uapi.Peer, fn func(allowedIPChange)) {
	for _, l := range p.Lines {
		switch l.Key {
		case "replace_allowed_ips":
			fn(allowedIPChange{replace: true})
		case "allowed_ip":
			v, remove := strings.CutPrefix(l.Value, "-")
			if pfx, err := netip.ParsePrefix(v); err == nil {
				fn(allowedIPChange{remove: remove, prefix: pfx.Masked()})
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
func (s *staticRoutes) check(key feature.Key, prefixes []netip.Prefix) error {
	s.Lock()
	defer s.Unlock()
	for owner, list := range s.byPeer {
		if owner == key {
			continue
		}
		for _, q := range list {
			for _, p := range prefixes {
				if p.Overlaps(q) {
					return fmt.Errorf("allowed IP %s overlaps %s of static %s", p, q, feature.ShortKey(owner))
				}
			}
		}
	}
	return nil
}

package device

import (
	"sync"

	wgdevice "golang.zx2c4.com/wireguard/device"
)

// peerSet is wghooks' own view of which peers the device holds, kept up to
// date from every configuration change, so features never poll IpcGet
// (which costs ~30 ms at 10k peers and blocks configuration meanwhile).
type peerSet struct {
	sync.RWMutex
	keys map[wgdevice.NoisePublicKey]struct{}
}

func (s *peerSet) init() { s.keys = make(map[wgdevice.NoisePublicKey]struct{}) }

func (s *peerSet) len() int {
	s.RLock()
	defer s.RUnlock()
	return len(s.keys)
}

func (s *peerSet) has(pk wgdevice.NoisePublicKey) bool {
	s.RLock()
	defer s.RUnlock()
	_, ok := s.keys[pk]
	return ok
}

func (s *peerSet) list() []wgdevice.NoisePublicKey {
	s.RLock()
	defer s.RUnlock()
	out := make([]wgdevice.NoisePublicKey, 0, len(s.keys))
	for k := range s.keys {
		out = append(out, k)
	}
	return out
}

// reconcile sets membership of each key from the upstream device's own
// answer (LookupPeer, a map read), so a transaction that failed half-way
// is still reflected exactly.
func (s *peerSet) reconcile(wg *wgdevice.Device, keys []wgdevice.NoisePublicKey) {
	s.Lock()
	defer s.Unlock()
	for _, k := range keys {
		if wg.LookupPeer(k) != nil {
			s.keys[k] = struct{}{}
		} else {
			delete(s.keys, k)
		}
	}
}

// Peers returns the public keys of the peers the device holds.
func (d *Device) Peers() []wgdevice.NoisePublicKey { return d.peers.list() }

// HasPeer reports whether the device holds the peer with public key pk.
func (d *Device) HasPeer(pk wgdevice.NoisePublicKey) bool { return d.peers.has(pk) }

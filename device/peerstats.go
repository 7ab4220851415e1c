package device

import (
	"fmt"
	"net/netip"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device/feature"
)

// PeerStats is one peer's counters, as `wg show` reports them.
type PeerStats struct {
	PublicKey     wgdevice.NoisePublicKey
	AllowedIPs    []netip.Prefix // in upstream's order; shares a backing array with the other peers'
	LastHandshake time.Time      // zero when none in this process
	RxBytes       uint64
	TxBytes       uint64
}

// PeerStats returns the counters of every peer the device holds (its
// peer view), in no particular order.
//
// Upstream exposes them only through its get reply, so one call costs
// what `wg show` costs (tens of milliseconds at 10,000 peers) and holds
// upstream's configuration lock for reading meanwhile: a `wg set` waits
// for it, while traffic and other reads (`wg show`) go on. Callers bound
// how often they call it (ops reads it at most once a second). The
// reply's private and preshared keys are never kept.
func (d *Device) PeerStats() ([]PeerStats, error) {
	r := d.peerStatsReader()
	if err := d.wg.IpcGetOperation(r); err != nil {
		return nil, fmt.Errorf("failed to read peer counters: %w", err)
	}
	return peerStatsOf(r.View()), nil
}

// peerStatsReader reads a get reply keeping only the peers of the peer
// view: one not (yet) in it is a transaction still applying.
func (d *Device) peerStatsReader() *feature.ViewReader {
	return &feature.ViewReader{Keep: func(k feature.Key) bool { return d.peers.has(wgdevice.NoisePublicKey(k)) }}
}

func peerStatsOf(v feature.View) []PeerStats {
	out := make([]PeerStats, len(v.Peers))
	for i, p := range v.Peers {
		out[i] = PeerStats{PublicKey: wgdevice.NoisePublicKey(p.PublicKey), AllowedIPs: p.AllowedIPs,
			LastHandshake: p.Handshake, RxBytes: p.Rx, TxBytes: p.Tx}
	}
	return out
}

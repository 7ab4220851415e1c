package device

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"
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
// reply's private and preshared keys are skipped as they stream by and
// never kept.
func (d *Device) PeerStats() ([]PeerStats, error) {
	p := peerStatsParser{d: d}
	if err := d.wg.IpcGetOperation(&p); err != nil {
		return nil, fmt.Errorf("failed to read peer counters: %w", err)
	}
	return p.finish(), nil
}

// peerStatsParser reads a get reply as upstream writes it (one Write of
// the whole reply today; any split is handled).
type peerStatsParser struct {
	d        *Device
	partial  []byte // a line split across writes
	out      []PeerStats
	spans    [][2]int // out[i]'s window of prefixes
	prefixes []netip.Prefix
	cur      *PeerStats
	sec      int64
	nsec     int64
}

func (p *peerStatsParser) Write(b []byte) (int, error) {
	n := len(b)
	if len(p.partial) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.partial = append(p.partial, b...)
			return n, nil
		}
		p.partial = append(p.partial, b[:i]...)
		p.line(p.partial)
		p.partial = p.partial[:0]
		b = b[i+1:]
	}
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		p.line(b[:i])
		b = b[i+1:]
	}
	p.partial = append(p.partial, b...)
	return n, nil
}

// finish reads what is left and returns the peers.
func (p *peerStatsParser) finish() []PeerStats {
	p.line(p.partial)
	p.partial = p.partial[:0]
	p.flush()
	// Each peer's prefixes are a window of one array, set once it is
	// complete (appends may have moved it).
	for i := range p.out {
		p.out[i].AllowedIPs = p.prefixes[p.spans[i][0]:p.spans[i][1]:p.spans[i][1]]
	}
	return p.out
}

// flush ends the current peer.
func (p *peerStatsParser) flush() {
	if p.cur != nil {
		if p.sec != 0 || p.nsec != 0 {
			p.cur.LastHandshake = time.Unix(p.sec, p.nsec)
		}
		p.spans[len(p.spans)-1][1] = len(p.prefixes)
	}
	p.cur, p.sec, p.nsec = nil, 0, 0
}

func (p *peerStatsParser) line(l []byte) {
	key, value, ok := bytes.Cut(l, []byte{'='})
	if !ok {
		return
	}
	switch string(key) {
	case "public_key":
		p.flush()
		var pk wgdevice.NoisePublicKey
		if n, err := hex.Decode(pk[:], value); err != nil || n != len(pk) || !p.d.peers.has(pk) {
			return // not (yet) in the peer view: a transaction is applying it
		}
		p.out = append(p.out, PeerStats{PublicKey: pk})
		p.spans = append(p.spans, [2]int{len(p.prefixes), len(p.prefixes)})
		p.cur = &p.out[len(p.out)-1]
	case "last_handshake_time_sec":
		p.sec, _ = strconv.ParseInt(string(value), 10, 64)
	case "last_handshake_time_nsec":
		p.nsec, _ = strconv.ParseInt(string(value), 10, 64)
	case "rx_bytes":
		if p.cur != nil {
			p.cur.RxBytes, _ = strconv.ParseUint(string(value), 10, 64)
		}
	case "tx_bytes":
		if p.cur != nil {
			p.cur.TxBytes, _ = strconv.ParseUint(string(value), 10, 64)
		}
	case "allowed_ip":
		if p.cur != nil {
			if pfx, err := netip.ParsePrefix(string(value)); err == nil {
				p.prefixes = append(p.prefixes, pfx)
			}
		}
	}
	// Everything else (the private key, preshared keys, endpoints,
	// keepalives) is not a counter and is dropped here.
}

package ops

import (
	"bytes"
	"encoding/base64"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device"
)

// The per-peer series carry the names, types, labels and values of
// prometheus_wireguard_exporter (`wg show dump` as it renders it), so a
// dashboard or alert written for that exporter works pointed at wghooks:
//
//	wireguard_sent_bytes_total{interface,public_key,allowed_ips}          counter
//	wireguard_received_bytes_total{interface,public_key,allowed_ips}      counter
//	wireguard_latest_handshake_seconds{interface,public_key,allowed_ips}  gauge, Unix seconds, 0 when none
//	wireguard_peers_total{interface}                                      gauge
//
// public_key is base64 as wg prints it; allowed_ips is wg's comma-joined
// list, "(none)" when empty.

// DefaultMaxPeers is Config.MaxPeers' default.
const DefaultMaxPeers = 10000

// peerReadInterval bounds how often scrapes read upstream's counters (a
// get reply): scrapes closer together than this share one read.
var peerReadInterval = time.Second // a variable for the benchmark

// peerLabels are one peer's label values, kept from read to read while
// its allowed IPs stay the same (most do), so a scrape formats only what
// changed.
type peerLabels struct {
	prefixes   []netip.Prefix
	publicKey  string
	allowedIPs string
	gen        uint64 // the last read that saw the peer
}

// peerSeries writes the per-peer series. They are rendered as text once
// per read (30,000 lines at 10,000 peers) and served as they are until
// the next, not built as client_golang metrics, which cost several times
// the read itself.
type peerSeries struct {
	d     *device.Device
	iface string // as a label value, escaped
	max   int    // < 0: no per-peer series

	mu     sync.Mutex // one read at a time; scrapes meanwhile wait and reuse it
	readAt time.Time
	text   []byte             // the families of the last read, served until the next
	shown  []device.PeerStats // at most max, in the order kept
	shownL []*peerLabels      // shown[i]'s labels
	count  int                // every peer read
	gen    uint64
	labels map[wgdevice.NoisePublicKey]*peerLabels
}

func newPeerSeries(d *device.Device, iface string, limit int) *peerSeries {
	if limit == 0 {
		limit = DefaultMaxPeers
	}
	return &peerSeries{d: d, iface: escapeLabel(iface), max: limit, labels: make(map[wgdevice.NoisePublicKey]*peerLabels)}
}

// appendText appends the per-peer families to b in the text format.
// When they are off, the size of the core's peer view is all it needs.
func (s *peerSeries) appendText(b []byte) ([]byte, error) {
	if s.max < 0 {
		peers := s.d.Stats().PeersActive
		return s.appendCounts(b, peers, peers), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readAt.IsZero() || time.Since(s.readAt) >= peerReadInterval {
		if err := s.readLocked(); err != nil {
			return b, err
		}
		s.text = s.renderLocked(s.text[:0])
	}
	return append(b, s.text...), nil
}

// renderLocked appends the families of the last read to b.
func (s *peerSeries) renderLocked(b []byte) []byte {
	b = s.appendCounts(b, s.count, s.count-len(s.shown))
	for _, f := range []struct {
		name, help, typ string
		value           func(p *device.PeerStats) uint64
	}{
		{"wireguard_sent_bytes_total", "Bytes sent to the peer", "counter", func(p *device.PeerStats) uint64 { return p.TxBytes }},
		{"wireguard_received_bytes_total", "Bytes received from the peer", "counter", func(p *device.PeerStats) uint64 { return p.RxBytes }},
		{"wireguard_latest_handshake_seconds", "Seconds from the last handshake", "gauge", func(p *device.PeerStats) uint64 {
			if p.LastHandshake.IsZero() {
				return 0
			}
			return uint64(p.LastHandshake.Unix()) // wg prints whole seconds
		}},
	} {
		b = appendHeader(b, f.name, f.help, f.typ)
		for i := range s.shown {
			l := s.shownL[i]
			b = append(b, f.name...)
			b = append(b, `{interface="`...)
			b = append(b, s.iface...)
			b = append(b, `",public_key="`...)
			b = append(b, l.publicKey...)
			b = append(b, `",allowed_ips="`...)
			b = append(b, l.allowedIPs...)
			b = append(b, `"} `...)
			b = strconv.AppendUint(b, f.value(&s.shown[i]), 10)
			b = append(b, '\n')
		}
	}
	return b
}

// appendCounts appends wireguard_peers_total and
// wghooks_peer_series_omitted.
func (s *peerSeries) appendCounts(b []byte, total, omitted int) []byte {
	b = appendHeader(b, "wireguard_peers_total", "Total number of peers", "gauge")
	b = append(b, `wireguard_peers_total{interface="`...)
	b = append(b, s.iface...)
	b = append(b, `"} `...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, '\n')
	b = appendHeader(b, "wghooks_peer_series_omitted", "Peers left out of the per-peer series (wireguard_*) by their cap (WGHOOKS_METRICS_PEERS).", "gauge")
	b = append(b, "wghooks_peer_series_omitted"...)
	if s.iface != "" {
		b = append(b, `{interface="`...)
		b = append(b, s.iface...)
		b = append(b, `"}`...)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(omitted), 10)
	return append(b, '\n')
}

func appendHeader(b []byte, name, help, typ string) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, help...)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

// escapeLabel escapes a label value for the text format.
func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// readLocked reads every peer's counters and keeps at most max of them:
// peers with a handshake first, then by public key, so the series shown
// stay the same from scrape to scrape.
func (s *peerSeries) readLocked() error {
	stats, err := s.d.PeerStats()
	if err != nil {
		return err
	}
	s.readAt = time.Now()
	s.count = len(stats)
	if len(stats) > s.max {
		slices.SortFunc(stats, func(a, b device.PeerStats) int {
			if ah, bh := !a.LastHandshake.IsZero(), !b.LastHandshake.IsZero(); ah != bh {
				if ah {
					return -1
				}
				return 1
			}
			return bytes.Compare(a.PublicKey[:], b.PublicKey[:])
		})
		stats = stats[:s.max]
	}
	s.gen++
	s.shown = stats
	s.shownL = s.shownL[:0]
	for i := range stats {
		s.shownL = append(s.shownL, s.labelsLocked(&stats[i]))
	}
	for k, l := range s.labels {
		if l.gen != s.gen {
			delete(s.labels, k)
		}
	}
	return nil
}

func (s *peerSeries) labelsLocked(p *device.PeerStats) *peerLabels {
	l := s.labels[p.PublicKey]
	if l == nil {
		l = &peerLabels{publicKey: base64.StdEncoding.EncodeToString(p.PublicKey[:])}
		s.labels[p.PublicKey] = l
	}
	if l.gen == 0 || !slices.Equal(l.prefixes, p.AllowedIPs) {
		l.prefixes = slices.Clone(p.AllowedIPs)
		l.allowedIPs = joinPrefixes(p.AllowedIPs)
	}
	l.gen = s.gen
	return l
}

// joinPrefixes writes allowed IPs as `wg show dump` does.
func joinPrefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "(none)"
	}
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

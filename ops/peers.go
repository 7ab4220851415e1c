package ops

import (
	"bytes"
	"encoding/base64"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
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
const peerReadInterval = time.Second

// peerLabels are one peer's label values, kept from read to read while
// its allowed IPs stay the same (most do), so a scrape formats only what
// changed.
type peerLabels struct {
	prefixes   []netip.Prefix
	publicKey  string
	allowedIPs string
	gen        uint64 // the last read that saw the peer
}

// peerSeries collects the per-peer series.
type peerSeries struct {
	d      *device.Device
	iface  string
	max    int // < 0: no per-peer series
	errorf hooks.Logf

	sent, received, handshake, total, omitted *prometheus.Desc

	mu     sync.Mutex // one read at a time; scrapes meanwhile wait and reuse it
	readAt time.Time
	shown  []device.PeerStats // at most max, in the order kept
	shownL []*peerLabels      // shown[i]'s labels
	count  int                // every peer read
	gen    uint64
	labels map[wgdevice.NoisePublicKey]*peerLabels
}

func newPeerSeries(d *device.Device, iface string, max int, errorf hooks.Logf, labels prometheus.Labels) *peerSeries {
	if max == 0 {
		max = DefaultMaxPeers
	}
	peer := []string{"interface", "public_key", "allowed_ips"}
	return &peerSeries{
		d: d, iface: iface, max: max, errorf: errorf,
		sent:      prometheus.NewDesc("wireguard_sent_bytes_total", "Bytes sent to the peer", peer, nil),
		received:  prometheus.NewDesc("wireguard_received_bytes_total", "Bytes received from the peer", peer, nil),
		handshake: prometheus.NewDesc("wireguard_latest_handshake_seconds", "Seconds from the last handshake", peer, nil),
		total:     prometheus.NewDesc("wireguard_peers_total", "Total number of peers", []string{"interface"}, nil),
		omitted: prometheus.NewDesc("wghooks_peer_series_omitted",
			"Peers left out of the per-peer series (wireguard_*) by their cap (WGHOOKS_METRICS_PEERS).", nil, labels),
		labels: make(map[wgdevice.NoisePublicKey]*peerLabels),
	}
}

func (s *peerSeries) describe(ch chan<- *prometheus.Desc) {
	ch <- s.sent
	ch <- s.received
	ch <- s.handshake
	ch <- s.total
	ch <- s.omitted
}

// collect sends the per-peer series; peers is the size of the core's
// peer view, all that is needed when they are off.
func (s *peerSeries) collect(ch chan<- prometheus.Metric, peers int) {
	if s.max < 0 {
		ch <- prometheus.MustNewConstMetric(s.total, prometheus.GaugeValue, float64(peers), s.iface)
		ch <- prometheus.MustNewConstMetric(s.omitted, prometheus.GaugeValue, float64(peers))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readAt.IsZero() || time.Since(s.readAt) >= peerReadInterval {
		if err := s.readLocked(); err != nil {
			s.errorf.Printf("metrics: %v", err)
			return
		}
	}
	ch <- prometheus.MustNewConstMetric(s.total, prometheus.GaugeValue, float64(s.count), s.iface)
	ch <- prometheus.MustNewConstMetric(s.omitted, prometheus.GaugeValue, float64(s.count-len(s.shown)))
	for i := range s.shown {
		p, l := &s.shown[i], s.shownL[i]
		var hs float64
		if !p.LastHandshake.IsZero() {
			hs = float64(p.LastHandshake.Unix()) // wg prints whole seconds
		}
		ch <- prometheus.MustNewConstMetric(s.sent, prometheus.CounterValue, float64(p.TxBytes), s.iface, l.publicKey, l.allowedIPs)
		ch <- prometheus.MustNewConstMetric(s.received, prometheus.CounterValue, float64(p.RxBytes), s.iface, l.publicKey, l.allowedIPs)
		ch <- prometheus.MustNewConstMetric(s.handshake, prometheus.GaugeValue, hs, s.iface, l.publicKey, l.allowedIPs)
	}
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

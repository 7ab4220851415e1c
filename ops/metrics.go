package ops

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wghooks/wghooks/device"
)

// metric is one value read from a Stats snapshot.
type metric struct {
	name, help string
	kind       prometheus.ValueType
	value      func(s *device.Stats) float64
}

func counter(name, help string, v func(s *device.Stats) uint64) metric {
	return metric{name, help, prometheus.CounterValue, func(s *device.Stats) float64 { return float64(v(s)) }}
}

func gauge(name, help string, v func(s *device.Stats) float64) metric {
	return metric{name, help, prometheus.GaugeValue, v}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metrics lists what /metrics exposes, all prefixed "wghooks_".
var metrics = []metric{
	counter("handshakes_sent_total", "Handshake messages (initiations and responses) sent.", func(s *device.Stats) uint64 { return s.HandshakesSent }),
	counter("handshakes_received_total", "Handshake messages (initiations and responses) received.", func(s *device.Stats) uint64 { return s.HandshakesReceived }),
	counter("handshake_failures_total", "Handshakes that failed.", func(s *device.Stats) uint64 { return s.HandshakeFailures }),
	counter("peers_installed_total", "Peers installed just in time from the peer provider.", func(s *device.Stats) uint64 { return s.PeersInstalled }),
	counter("outbound_installs_total", "Just-in-time peers installed by a packet to their address (part of peers_installed_total).", func(s *device.Stats) uint64 { return s.OutboundInstalls }),
	counter("peers_evicted_total", "Idle just-in-time peers evicted.", func(s *device.Stats) uint64 { return s.PeersEvicted }),
	gauge("peers", "Peers the device holds now.", func(s *device.Stats) float64 { return float64(s.PeersActive) }),
	counter("peer_misses_total", "Authenticated initiations from peers the device did not hold.", func(s *device.Stats) uint64 { return s.PeerMisses }),
	counter("provider_errors_total", "Peer provider lookups that failed.", func(s *device.Stats) uint64 { return s.ProviderErrors }),
	counter("lookups_refused_total", "Initiations from new sources not decoded because the global provider lookup budget (WGHOOKS_JIT_LOOKUP_RATE) was spent.", func(s *device.Stats) uint64 { return s.LookupsRefused }),
	counter("drains_total", "Drains (keypairs expired, readiness withdrawn).", func(s *device.Stats) uint64 { return s.Drains }),
	counter("endpoint_failovers_total", "Peers moved to another candidate address of their endpoint.", func(s *device.Stats) uint64 { return s.EndpointFailovers }),
	counter("source_resets_total", "Cached source addresses reset.", func(s *device.Stats) uint64 { return s.SourceResets }),
	counter("flow_escapes_total", "Moves to a new source port after a peer behind a load balancer stopped answering.", func(s *device.Stats) uint64 { return s.FlowEscapes }),
	counter("broadcasts_total", "Handshake broadcasts to every peer with an endpoint.", func(s *device.Stats) uint64 { return s.Broadcasts }),
	counter("stale_wakes_total", "Handshakes started on data for a session the device no longer holds.", func(s *device.Stats) uint64 { return s.StaleWakes }),
	counter("handshakes_guarded_total", "Handshake initiations the flood guard dropped (copies, invalid mac1, or no cookie during a flood).", func(s *device.Stats) uint64 { return s.HandshakesGuarded }),
	counter("handshake_replays_total", "Copies of handshake initiations the flood guard had let through, dropped before any X25519.", func(s *device.Stats) uint64 { return s.ReplaysDropped }),
	counter("cookie_replies_total", "Cookie replies the flood guard sent.", func(s *device.Stats) uint64 { return s.CookiesSent }),
	gauge("flooded", "1 while the flood guard requires cookies from new sources.", func(s *device.Stats) float64 { return b2f(s.Flooded) }),
	gauge("up", "1 while the device is up.", func(s *device.Stats) float64 { return b2f(s.Up) }),
	gauge("draining", "1 while the device is draining.", func(s *device.Stats) float64 { return b2f(s.Draining) }),
}

// collector reads the device's counters at scrape time: nothing is kept
// or updated between scrapes.
type collector struct {
	d       *device.Device
	labels  prometheus.Labels
	descs   []*prometheus.Desc
	bytes   *prometheus.Desc
	latency *prometheus.Desc
	decode  *prometheus.Desc
	install *prometheus.Desc
	ready   *prometheus.Desc
}

func newCollector(d *device.Device, iface string) *collector {
	var labels prometheus.Labels
	if iface != "" {
		labels = prometheus.Labels{"interface": iface}
	}
	c := &collector{d: d, labels: labels}
	for _, m := range metrics {
		c.descs = append(c.descs, prometheus.NewDesc("wghooks_"+m.name, m.help, nil, labels))
	}
	c.bytes = prometheus.NewDesc("wghooks_transfer_bytes_total", "UDP payload bytes through the device's sockets, by direction (rx, tx).", []string{"direction"}, labels)
	c.latency = prometheus.NewDesc("wghooks_provider_latency_seconds", "Peer provider lookups and their total time.", nil, labels)
	c.decode = prometheus.NewDesc("wghooks_initiation_decode_seconds", "Initiations from new sources that wghooks decoded itself (one X25519 for a key the device holds, two before a just-in-time lookup), and their total time.", nil, labels)
	c.install = prometheus.NewDesc("wghooks_peer_install_seconds", "Just-in-time install transactions (one upstream configuration change each; a batch is one), and their total time.", nil, labels)
	c.ready = prometheus.NewDesc("wghooks_ready", "1 when /readyz answers 200.", nil, labels)
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.bytes
	ch <- c.latency
	ch <- c.decode
	ch <- c.install
	ch <- c.ready
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.d.Stats()
	for i, m := range metrics {
		ch <- prometheus.MustNewConstMetric(c.descs[i], m.kind, m.value(&s))
	}
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.RxBytes), "rx")
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.TxBytes), "tx")
	ch <- prometheus.MustNewConstSummary(c.latency, s.ProviderLookups, s.ProviderLatencySeconds, nil)
	ch <- prometheus.MustNewConstSummary(c.decode, s.InitiationsDecoded, s.DecodeSeconds, nil)
	ch <- prometheus.MustNewConstSummary(c.install, s.InstallTransactions, s.InstallSeconds, nil)
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, b2f(Ready(c.d) == ""))
}

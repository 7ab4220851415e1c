package device

import (
	"sync/atomic"

	wgconn "golang.zx2c4.com/wireguard/conn"

	"wghooks/conn"
)

// counters are the device's event counters, bumped by the features and
// read by Stats (the metrics endpoint scrapes them). Only atomic adds: they
// sit on hot paths.
type counters struct {
	handshakesSent, handshakesReceived atomic.Uint64
	initiationsSent                    atomic.Uint64 // part of handshakesSent
	handshakeFailures                  atomic.Uint64
	peersInstalled, peersEvicted       atomic.Uint64
	outboundInstalls                   atomic.Uint64 // part of peersInstalled
	peerMisses                         atomic.Uint64
	providerErrors                     atomic.Uint64
	providerLatencyNanos               atomic.Uint64 // sum over lookups
	providerLookups                    atomic.Uint64
	drains                             atomic.Uint64
	endpointFailovers                  atomic.Uint64
	sourceResets                       atomic.Uint64
	flowEscapes                        atomic.Uint64
	broadcasts                         atomic.Uint64
	staleWakes                         atomic.Uint64
	guardDropped, cookiesSent          atomic.Uint64
	replaysDropped                     atomic.Uint64
}

// Stats is a snapshot of the device's counters and gauges.
type Stats struct {
	HandshakesSent, HandshakesReceived uint64
	HandshakeFailures                  uint64
	PeersInstalled, PeersEvicted       uint64
	OutboundInstalls                   uint64 // part of PeersInstalled: by a packet to the peer
	PeersActive                        int    // peers the device holds now
	PeerMisses                         uint64
	ProviderErrors                     uint64
	ProviderLookups                    uint64
	ProviderLatencySeconds             float64 // sum over lookups
	Drains                             uint64
	EndpointFailovers                  uint64
	SourceResets                       uint64
	FlowEscapes                        uint64
	Broadcasts                         uint64
	StaleWakes                         uint64
	HandshakesGuarded                  uint64 // initiations the guard dropped
	ReplaysDropped                     uint64 // part of HandshakesGuarded: copies of one it let through
	CookiesSent                        uint64 // cookie replies the guard sent
	Flooded                            bool   // the guard requires cookies now
	RxBytes, TxBytes                   uint64 // UDP payload bytes through the bind
	Up, Draining                       bool
}

// Stats returns a snapshot of the device's counters.
func (d *Device) Stats() Stats {
	c := &d.stats
	rx, tx := d.bind.Bytes()
	return Stats{
		HandshakesSent:         c.handshakesSent.Load(),
		HandshakesReceived:     c.handshakesReceived.Load(),
		HandshakeFailures:      c.handshakeFailures.Load(),
		PeersInstalled:         c.peersInstalled.Load(),
		PeersEvicted:           c.peersEvicted.Load(),
		OutboundInstalls:       c.outboundInstalls.Load(),
		PeersActive:            d.peers.len(),
		PeerMisses:             c.peerMisses.Load(),
		ProviderErrors:         c.providerErrors.Load(),
		ProviderLookups:        c.providerLookups.Load(),
		ProviderLatencySeconds: float64(c.providerLatencyNanos.Load()) / 1e9,
		Drains:                 c.drains.Load(),
		EndpointFailovers:      c.endpointFailovers.Load(),
		SourceResets:           c.sourceResets.Load(),
		FlowEscapes:            c.flowEscapes.Load(),
		Broadcasts:             c.broadcasts.Load(),
		StaleWakes:             c.staleWakes.Load(),
		HandshakesGuarded:      c.guardDropped.Load(),
		CookiesSent:            c.cookiesSent.Load(),
		ReplaysDropped:         c.replaysDropped.Load(),
		Flooded:                d.guard.flooded(),
		RxBytes:                rx,
		TxBytes:                tx,
		Up:                     d.IsUp(),
		Draining:               d.Draining(),
	}
}

// handshakeCounter counts handshake messages in and out. Handshakes are
// rare, so seeing them costs nothing measurable.
type handshakeCounter struct {
	noFeature
	c *counters
}

func (h *handshakeCounter) receiveTypes() uint8 {
	return conn.TypeMask(conn.MessageInitiation, conn.MessageResponse)
}

func (h *handshakeCounter) onReceive([]byte, wgconn.Endpoint) conn.Verdict {
	h.c.handshakesReceived.Add(1)
	return conn.Pass
}

func (h *handshakeCounter) onSend(bufs [][]byte, _ wgconn.Endpoint) {
	// Upstream sends each handshake message alone; data goes in batches
	// that need no look.
	if len(bufs) != 1 {
		return
	}
	switch conn.MessageType(bufs[0]) {
	case conn.MessageInitiation:
		h.c.initiationsSent.Add(1)
		h.c.handshakesSent.Add(1)
	case conn.MessageResponse:
		h.c.handshakesSent.Add(1)
	}
}

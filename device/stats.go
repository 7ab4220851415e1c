package device

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
	LookupsRefused                     uint64  // initiations from new sources over the lookup budget, not decoded
	ProviderLatencySeconds             float64 // sum over lookups
	InitiationsDecoded                 uint64  // initiations from new sources wghooks decoded itself (just-in-time peers: es, and ss for a key the device does not hold)
	DecodeSeconds                      float64 // sum over those decodes
	InstallTransactions                uint64  // just-in-time installs, one upstream transaction each (a batch is one)
	InstallSeconds                     float64 // sum over those transactions
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
		HandshakesSent:         c.HandshakesSent.Load(),
		HandshakesReceived:     c.HandshakesReceived.Load(),
		HandshakeFailures:      c.HandshakeFailures.Load(),
		PeersInstalled:         c.PeersInstalled.Load(),
		PeersEvicted:           c.PeersEvicted.Load(),
		OutboundInstalls:       c.OutboundInstalls.Load(),
		PeersActive:            d.peers.len(),
		PeerMisses:             c.PeerMisses.Load(),
		ProviderErrors:         c.ProviderErrors.Load(),
		ProviderLookups:        c.ProviderLookups.Load(),
		LookupsRefused:         c.LookupsRefused.Load(),
		ProviderLatencySeconds: float64(c.ProviderLatencyNanos.Load()) / 1e9,
		InitiationsDecoded:     c.InitiationsDecoded.Load(),
		DecodeSeconds:          float64(c.DecodeNanos.Load()) / 1e9,
		InstallTransactions:    c.InstallTransactions.Load(),
		InstallSeconds:         float64(c.InstallNanos.Load()) / 1e9,
		Drains:                 c.Drains.Load(),
		EndpointFailovers:      c.EndpointFailovers.Load(),
		SourceResets:           c.SourceResets.Load(),
		FlowEscapes:            c.FlowEscapes.Load(),
		Broadcasts:             c.Broadcasts.Load(),
		StaleWakes:             c.StaleWakes.Load(),
		HandshakesGuarded:      c.GuardDropped.Load(),
		CookiesSent:            c.CookiesSent.Load(),
		ReplaysDropped:         c.ReplaysDropped.Load(),
		Flooded:                d.guard.Flooded(),
		RxBytes:                rx,
		TxBytes:                tx,
		Up:                     d.IsUp(),
		Draining:               d.Draining(),
	}
}

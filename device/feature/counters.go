package feature

import "sync/atomic"

// Counters are the device's event counters, bumped by the core and the
// features and read by Device.Stats (the metrics endpoint scrapes them).
// Only atomic adds: they sit on hot paths.
type Counters struct {
	HandshakesSent, HandshakesReceived atomic.Uint64
	InitiationsSent                    atomic.Uint64 // part of HandshakesSent
	HandshakeFailures                  atomic.Uint64
	PeersInstalled, PeersEvicted       atomic.Uint64
	OutboundInstalls                   atomic.Uint64 // part of PeersInstalled
	PeerMisses                         atomic.Uint64
	ProviderErrors                     atomic.Uint64
	ProviderLatencyNanos               atomic.Uint64 // sum over lookups
	ProviderLookups                    atomic.Uint64
	LookupsRefused                     atomic.Uint64 // initiations over the jit lookup budget
	// A first contact's own costs besides the lookup: decoding the
	// initiation (jit: es, and ss for a key the device does not hold) and
	// the install transaction.
	InitiationsDecoded, DecodeNanos   atomic.Uint64
	InstallTransactions, InstallNanos atomic.Uint64
	Drains                            atomic.Uint64
	EndpointFailovers                 atomic.Uint64
	SourceResets                      atomic.Uint64
	FlowEscapes                       atomic.Uint64
	Broadcasts                        atomic.Uint64
	StaleWakes                        atomic.Uint64
	GuardDropped, CookiesSent         atomic.Uint64
	ReplaysDropped                    atomic.Uint64
}

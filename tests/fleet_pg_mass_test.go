package tests

import "testing"

// TestFleetPGMassArrival is TestJITMassArrival on the fleet's PostgreSQL
// store: hundreds of clients the gateway has never seen knock at once,
// their keys in PostgreSQL; every one gets in, none sends more than two
// initiations (at most one retransmit), and the store was asked in
// batches (pgstore's LookupPeers, one query for many keys). Under the
// race detector 64 clients knock.
func TestFleetPGMassArrival(t *testing.T) {
	jitMassArrival(t, newBenchPGPeerStore)
}

//go:build linux

package tests

// The replacement-gateway test of fleet_state_netns_test.go (a new daemon
// in another namespace, same key, the address moved to it, no state
// file) on the fleet's PostgreSQL: every daemon reaches the one server
// through its unix socket, a path on the shared filesystem, which every
// network namespace sees.

import "testing"

// TestFleetPGTakeoverNetns: the first gateway's daemon writes what it
// learned to PostgreSQL; it dies, its address moves to another namespace,
// and a replacement daemon there (same key, no state file,
// WGHOOKS_TAKEOVER=on, WGHOOKS_PEER_DB the same postgres:// URL) sends
// each roaming client (Debian's wireguard-go, never touched) exactly one
// initiation; the clients send none and their traffic flows again.
func TestFleetPGTakeoverNetns(t *testing.T) {
	fleetTakeoverNetns(t, newPGFleet)
}

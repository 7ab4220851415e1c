package tests

// State handed across machines on the fleet's PostgreSQL store: the
// replacement-gateway test of fleet_state_netns_test.go (a new daemon in
// another namespace, same key, the address moved to it, no state file)
// with every daemon reaching one real PostgreSQL through its unix socket
// (a path on the shared filesystem, which every network namespace sees).

import (
	"context"
	"testing"

	"github.com/wghooks/wghooks/hooks/pgstore"
)

// newPGFleet is a fleet's store on a PostgreSQL server of its own,
// migrated; each machine opens its own pool on it.
func newPGFleet(tb testing.TB) fleetShared {
	tb.Helper()
	srv, admin := benchPGStore(tb)
	url := srv.URL("postgres")
	return fleetShared{db: url, admin: admin, put: pgPeerStore(admin).Put,
		open: func(tb testing.TB) fleetConn {
			tb.Helper()
			s, err := pgstore.Open(context.Background(), pgstore.Config{URL: url})
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(s.Close)
			return s
		},
	}
}

// TestFleetPGTakeoverNetns: the first gateway's daemon writes what it
// learned to PostgreSQL; it dies, its address moves to another namespace,
// and a replacement daemon there (same key, no state file,
// WGHOOKS_TAKEOVER=on, WGHOOKS_PEER_DB the same postgres:// URL) sends
// each roaming client (Debian's wireguard-go, never touched) exactly one
// initiation; the clients send none and their traffic flows again.
func TestFleetPGTakeoverNetns(t *testing.T) {
	fleetTakeoverNetns(t, newPGFleet)
}

package tests

// State handed across machines on the fleet's PostgreSQL store: the
// shared store the takeover test (fleet_pg_takeover_netns_test.go) and
// BenchmarkFleetPGTakeover run their gateways on.

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

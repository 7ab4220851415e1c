package tests

import "testing"

// BenchmarkFleetPGTakeover is BenchmarkFleetTakeover on the fleet's
// PostgreSQL store (a server of its own per run; each gateway its own
// pool): seconds from the replacement up until every roaming client's
// traffic flows again, with the shared state and without it.
// scripts/bench/fleet.sh prints it beside SQLite's.
//
//	go test -run '^$' -bench BenchmarkFleetPGTakeover -benchtime 1x ./tests
func BenchmarkFleetPGTakeover(b *testing.B) {
	benchFleetTakeover(b, newPGFleet)
}

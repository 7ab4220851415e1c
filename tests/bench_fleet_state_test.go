package tests

import (
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/wghooks/wghooks/internal/testkit"
)

// BenchmarkFleetTakeover measures a replacement gateway (same key, the
// address moved to it, no state file) serving roaming clients that keep
// sending: the seconds from the replacement being up until every client's
// traffic flows again, with the fleet's shared state (Takeover: one
// initiation to each) and without it (the clients' own timers: about 15 s
// after their data goes unanswered). In process, loopback UDP, one shared
// SQLite store (BenchmarkFleetPGTakeover: PostgreSQL).
// WGTEST_BENCH_FLEET_CLIENTS clients (default 8); a client not back
// within WGTEST_BENCH_FLEET_CAP (default 30s) counts the cap with back=0.
// scripts/bench/fleet.sh prints the table.
//
//	go test -run '^$' -bench BenchmarkFleetTakeover -benchtime 1x ./tests
func BenchmarkFleetTakeover(b *testing.B) {
	benchFleetTakeover(b, newSQLiteFleet)
}

// benchFleetTakeover is BenchmarkFleetTakeover on the store newShared
// makes (a new one for each run).
func benchFleetTakeover(b *testing.B, newShared func(testing.TB) fleetShared) {
	clients, limit := 8, 30*time.Second
	if v := os.Getenv("WGTEST_BENCH_FLEET_CLIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			b.Fatalf("failed to parse WGTEST_BENCH_FLEET_CLIENTS=%q: want 1..200", v)
		}
		clients = n
	}
	if v := os.Getenv("WGTEST_BENCH_FLEET_CAP"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("failed to parse WGTEST_BENCH_FLEET_CAP=%q: want a duration such as 30s", v)
		}
		limit = d
	}
	for _, takeover := range []bool{true, false} {
		name := "shared-state"
		if !takeover {
			name = "no-state"
		}
		b.Run(name, func(b *testing.B) {
			var total time.Duration
			back := 0
			for i := 0; i < b.N; i++ {
				d, ok := fleetTakeoverRun(b, newShared, clients, takeover, limit)
				total += d
				if ok {
					back++
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/all-back")
			b.ReportMetric(float64(back)/float64(b.N), "back")
			b.ReportMetric(float64(clients), "clients")
		})
	}
}

// fleetTakeoverRun runs one takeover: the first gateway serves clients,
// is stopped, the clients keep pinging every 10 ms, and the replacement
// starts; it returns how long after the replacement was up the last
// client's traffic flowed again (limit, false when one never did).
func fleetTakeoverRun(b *testing.B, newShared func(testing.TB) fleetShared, clients int, takeover bool, limit time.Duration) (time.Duration, bool) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	r := newFleetRigOn(b, newShared(b), clients)
	r.firstGateway(b)
	gw := netip.MustParseAddr(fleetGatewayAddr)
	pingers := make([]*testkit.Pinger, len(r.clients))
	for i, c := range r.clients {
		pingers[i] = testkit.NewPinger(b, &c.Node, gw)
		pingers[i].Every(10 * time.Millisecond)
	}
	s, _ := r.gateway(b, takeover)
	var last time.Time
	ok := testkit.Poll(limit, func() bool {
		last = time.Time{}
		for _, p := range pingers {
			at, _, answered := p.FirstAnswer(s.upAt, 100*time.Millisecond)
			if !answered {
				return false
			}
			if at.After(last) {
				last = at
			}
		}
		return true
	})
	for _, p := range pingers {
		p.Stop()
	}
	if !ok {
		return limit, false
	}
	return last.Sub(s.upAt), true
}

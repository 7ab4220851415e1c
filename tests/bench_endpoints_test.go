package tests

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

// TestBenchEndpoints measures seconds from a path failure to the first
// packet through, for a wghooks client with a hostname endpoint and a plain
// upstream client given the address `wg` would have resolved, in the same
// run: the server's IPv6 address dies (its relay drops everything) while
// the tunnel is idle, and while pings flow every 100 ms. Upstream never
// recovers; it is reported as stuck after the cap. Run by
// scripts/bench/endpoints.sh (WGTEST_BENCH_ENDPOINTS=1, RUNS=n).
func TestBenchEndpoints(t *testing.T) {
	if os.Getenv("WGTEST_BENCH_ENDPOINTS") == "" {
		t.Skip("benchmark: set WGTEST_BENCH_ENDPOINTS=1 (scripts/bench/endpoints.sh)")
	}
	runs, _ := strconv.Atoi(os.Getenv("RUNS"))
	if runs < 1 {
		runs = 3
	}
	const capAt = 12 * time.Second
	results := map[string][]time.Duration{}
	for i := 0; i < runs; i++ {
		for _, idle := range []bool{true, false} {
			for _, upstream := range []bool{false, true} {
				name := benchEpName(idle, upstream)
				t.Run(fmt.Sprintf("%s-%d", name, i), func(t *testing.T) {
					results[name] = append(results[name], benchEpFailover(t, idle, upstream, capAt))
				})
			}
		}
	}
	fmt.Printf("endpoints: seconds from the IPv6 address dying to the first ping answered (median of %d; cap %v)\n", runs, capAt)
	fmt.Printf("endpoints: %-26s %10s %10s  %s\n", "scenario", "wghooks", "upstream", "goal")
	for _, idle := range []bool{true, false} {
		ours, theirs := epMedian(results[benchEpName(idle, false)]), epMedian(results[benchEpName(idle, true)])
		scenario, goal := "traffic flowing (100 ms)", "<= 0.5 s"
		if idle {
			scenario, goal = "idle tunnel, then a packet", "<= 1 s"
		}
		fmt.Printf("endpoints: %-26s %10s %10s  %s\n", scenario, benchEpFmt(ours, capAt), benchEpFmt(theirs, capAt), goal)
	}
}

func benchEpName(idle, upstream bool) string {
	n := "traffic"
	if idle {
		n = "idle"
	}
	if upstream {
		return n + "-upstream"
	}
	return n + "-wghooks"
}

func benchEpFmt(d, capAt time.Duration) string {
	if d >= capAt {
		return "stuck"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func epMedian(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// benchEpFailover runs one failure and returns the time to the first
// answered ping (capAt when none).
func benchEpFailover(t *testing.T, idle, upstream bool, capAt time.Duration) time.Duration {
	p := newEpPair(t, device.Config{}, []string{"::1", "127.0.0.2"})
	from := p.client
	if upstream {
		up, du := testkit.NewUpstream(t, "198.18.40.3", nil)
		testkit.AddPeer(t, p.ds, up, false)
		if err := du.IpcSet(testkit.UAPI("public_key", p.server.Key.PubHex(), "allowed_ip", "198.18.40.1/32",
			"endpoint", p.relayAddr("::1"))); err != nil {
			t.Fatal(err)
		}
		from = up
	}
	if _, err := from.PingUntil(p.server.Addr, time.Second, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	pg := testkit.NewPinger(t, from, p.server.Addr)
	if !idle {
		for i := 0; i < 5; i++ {
			pg.Send()
			time.Sleep(100 * time.Millisecond)
		}
	} else {
		time.Sleep(time.Second)
	}
	if !upstream {
		t.Logf("endpoint before the cut: %s", testkit.PeerValue(t, p.dc, p.serverPk, "endpoint"))
	}
	p.relays["::1"].Cut()
	start := time.Now()
	if idle {
		time.Sleep(2 * time.Second) // the tunnel idles on a dead path
		start = time.Now()
	}
	for time.Since(start) < capAt {
		if _, got, ok := pg.FirstAnswer(start, 0); ok {
			return got.Sub(start)
		}
		pg.Send()
		time.Sleep(100 * time.Millisecond)
	}
	if os.Getenv("EPDEBUG") != "" {
		t.Logf("client log:\n%s", p.clientLog)
	}
	return capAt
}

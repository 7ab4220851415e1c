package tests

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/lbsim"
	"github.com/wghooks/wghooks/internal/testkit"
)

// TestBenchHAFailover measures, in one run, the seconds from the death of
// the backend carrying a client's flow to the first packet through the
// surviving backend, for wghooks clients and a plain upstream client
// behind the same kind of balancer. It is a benchmark, not a test: it runs
// only with WGTEST_BENCH_HA=1 (scripts/bench/ha.sh sets it) and prints
// its figures; RUNS (default 3) sets the rounds per wghooks scenario.
//
// Scenarios:
//
//	traffic   the client pings every 100 ms when the backend dies
//	idle      the client only sends keepalives; it starts pinging 3 s
//	          after the death (figure: from its first ping)
//	slowcheck traffic, but the balancer needs about 4 s to mark the
//	          backend unhealthy, so a new flow may hash to the dead one
//	          again and the client must escape again
//	upstream  plain upstream client, traffic; capped at 60 s
func TestBenchHAFailover(t *testing.T) {
	if os.Getenv("WGTEST_BENCH_HA") != "1" {
		t.Skip("benchmark: set WGTEST_BENCH_HA=1 (scripts/bench/ha.sh)")
	}
	runs := benchJITEnvInt("RUNS", 3)
	const upstreamCap = 60 * time.Second

	var upstream time.Duration
	var upstreamStuck bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t.Run("upstream", func(t *testing.T) {
			upstream, upstreamStuck = haFailoverRound(t, "198.18.20.1", "198.18.20.2", false, haRoundOpts{cap: upstreamCap})
		})
	}()

	results := map[string][]time.Duration{}
	for r := 0; r < runs; r++ {
		for i, sc := range []struct {
			name string
			opts haRoundOpts
		}{
			{"traffic", haRoundOpts{}},
			{"idle", haRoundOpts{idleFor: 3 * time.Second}},
			{"slowcheck", haRoundOpts{health: 2 * time.Second}},
		} {
			sc.opts.cap = 30 * time.Second
			server := fmt.Sprintf("198.18.%d.1", 21+r*3+i)
			client := fmt.Sprintf("198.18.%d.2", 21+r*3+i)
			t.Run(fmt.Sprintf("%s-%d", sc.name, r), func(t *testing.T) {
				d, stuck := haFailoverRound(t, server, client, true, sc.opts)
				if stuck {
					t.Errorf("wghooks client (%s) did not recover within %v", sc.name, sc.opts.cap)
				}
				results[sc.name] = append(results[sc.name], d)
				fmt.Printf("ha:   round %d %-9s wghooks: %.2f s\n", r+1, sc.name, d.Seconds())
			})
		}
	}
	// A client that only sends keepalives, once: how long until it
	// notices the dead backend by itself (the probe interval, 15 s by
	// default, plus the probe's wait). Upstream notices at its next rekey.
	var keepalive time.Duration
	t.Run("keepalive", func(t *testing.T) {
		keepalive = haKeepaliveRound(t, "198.18.30.1", "198.18.30.2", 40*time.Second)
	})
	wg.Wait()

	fmt.Printf("ha: seconds from backend death to the first packet through the surviving backend (median of %d)\n", runs)
	for _, name := range []string{"traffic", "idle", "slowcheck"} {
		ds := results[name]
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		med := ds[len(ds)/2]
		what := "from backend death"
		if name == "idle" {
			what = "from the first packet sent after the death"
		}
		fmt.Printf("ha:   wghooks %-9s %5.2f s  (%s; all: %v)\n", name, med.Seconds(), what, ds)
	}
	if upstreamStuck {
		fmt.Printf("ha:   upstream  traffic   stuck: no packet within %v (keepalives keep the dead flow pinned)\n", upstreamCap)
		if ds := results["traffic"]; len(ds) > 0 {
			fmt.Printf("ha:   ratio upstream/wghooks (traffic): > %.0fx\n", upstreamCap.Seconds()/ds[len(ds)/2].Seconds())
		}
	} else {
		fmt.Printf("ha:   upstream  traffic   %5.2f s\n", upstream.Seconds())
	}
	fmt.Printf("ha:   wghooks keepalive-only client: escaped %.2f s after the death, before sending any data (probe interval 15 s: one handshake per 15 s of silence)\n", keepalive.Seconds())
	fmt.Println("ha:   goal: wghooks traffic <= 1 s, idle then a packet <= 1.5 s")
}

type haRoundOpts struct {
	idleFor time.Duration // client silent (keepalives only) this long after the death
	health  time.Duration // balancer health-check interval; default 200 ms
	cap     time.Duration // give up after this long
}

// haFailoverRound builds a fleet and a client, kills the backend carrying
// the client's flow and returns how long until a ping got through, or the
// cap and stuck=true.
func haFailoverRound(t *testing.T, serverAddr, clientAddr string, ours bool, o haRoundOpts) (time.Duration, bool) {
	f := newHAFleetWith(t, serverAddr, lbsim.Config{HealthInterval: o.health})
	var c *testkit.Node
	var dead int
	if ours {
		n, d := testkit.NewWghooks(t, clientAddr, device.Config{})
		c, dead = n, f.join(t, n, d, d.Bind().Port)
	} else {
		n, u := testkit.NewUpstream(t, clientAddr, nil)
		c, dead = n, f.join(t, n, u, func() uint16 { return n.Port })
	}
	var p *testkit.Pinger
	if o.idleFor == 0 {
		p = testkit.NewPinger(t, c, f.front.Addr)
		p.Every(100 * time.Millisecond)
	}
	killed := time.Now()
	f.servers[dead].kill()
	from := killed
	if o.idleFor > 0 {
		time.Sleep(o.idleFor)
		from = time.Now()
		p = testkit.NewPinger(t, c, f.front.Addr)
		p.Every(100 * time.Millisecond)
	}
	// Replies already in flight when the backend died do not count.
	after := killed.Add(100 * time.Millisecond)
	if o.idleFor > 0 {
		after = from
	}
	deadline := from.Add(o.cap)
	for time.Now().Before(deadline) {
		if at, ok := p.FirstReplyAfter(after); ok {
			return at.Sub(from), false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return o.cap, true
}

// haKeepaliveRound kills the backend of a client that only sends
// keepalives and returns how long until it escaped (capAt when it did
// not).
func haKeepaliveRound(t *testing.T, serverAddr, clientAddr string, capAt time.Duration) time.Duration {
	f := newHAFleetWith(t, serverAddr, lbsim.Config{})
	n, d := testkit.NewWghooks(t, clientAddr, device.Config{})
	dead := f.join(t, n, d, d.Bind().Port)
	killed := time.Now()
	f.servers[dead].kill()
	for time.Since(killed) < capAt {
		if d.Stats().FlowEscapes > 0 {
			return time.Since(killed)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("keepalive-only client did not escape within %v", capAt)
	return capAt
}

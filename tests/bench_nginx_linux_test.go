package tests

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBenchHANginx is TestBenchHAFailover's traffic scenario through
// Debian's nginx (stream, UDP, flows hashed on client address and port)
// instead of the test balancer: seconds from the silent death of the
// backend carrying a client's flow to the first packet through the
// surviving backend, for wghooks clients (RUNS rounds, default 3, default
// settings) and one plain upstream client, each capped at 60 s, in the
// same run. Open-source nginx has no active health checks, and with
// proxy_responses unlimited (as WireGuard needs) its passive ones never
// fire on a silent backend: a new flow hashes to the dead backend half
// the time, and the client escapes again. It runs
// only with WGTEST_BENCH_HA=1 (scripts/bench/ha.sh sets it).
func TestBenchHANginx(t *testing.T) {
	if os.Getenv("WGTEST_BENCH_HA") != "1" {
		t.Skip("benchmark: set WGTEST_BENCH_HA=1 (scripts/bench/ha.sh)")
	}
	nginxRequire(t)
	runs := benchJITEnvInt("RUNS", 3)
	const upstreamCap = 60 * time.Second

	var upstream nginxEscape
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t.Run("upstream", func(t *testing.T) {
			upstream = nginxBenchRound(t, "198.18.40.1", "198.18.40.2", false, upstreamCap)
		})
	}()
	var ds []time.Duration
	for r := 0; r < runs; r++ {
		t.Run(fmt.Sprintf("wghooks-%d", r), func(t *testing.T) {
			// A round can be stuck by chance: each escape lands on the dead
			// backend half the time (10 escapes in 30 s: 1 round in 1000).
			e := nginxBenchRound(t, fmt.Sprintf("198.18.%d.1", 41+r), fmt.Sprintf("198.18.%d.2", 41+r), true, upstreamCap)
			ds = append(ds, e.after)
			fmt.Printf("ha:   round %d nginx     wghooks: %s\n", r+1, e)
		})
	}
	wg.Wait()

	fmt.Printf("ha: through nginx %s (stream, hash $remote_addr$remote_port consistent), seconds from a silent backend death to the first packet through the survivor (median of %d)\n", nginxVersion(), runs)
	if len(ds) > 0 {
		slices.Sort(ds)
		fmt.Printf("ha:   wghooks nginx     %5.2f s  (all: %v)\n", ds[len(ds)/2].Seconds(), ds)
	}
	fmt.Printf("ha:   upstream nginx    %s\n", upstream)
	if !upstream.recovered && len(ds) > 0 {
		fmt.Printf("ha:   ratio upstream/wghooks (nginx): > %.0fx\n", upstreamCap.Seconds()/ds[len(ds)/2].Seconds())
	}
}

// nginxVersion is "nginx/1.22.1", or "" when nginx cannot say.
func nginxVersion() string {
	out, _ := exec.Command(nginxBinary, "-v").CombinedOutput()
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
}

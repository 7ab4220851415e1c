package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

// BenchmarkHardeningFlood measures a known peer's TCP throughput through
// a gateway while a second process floods the gateway with bogus
// handshakes (random bytes, valid-mac1 garbage, genuine initiations from
// keys the provider does not know, replays of the peer's real
// initiation), against the same stream with no flood: for our JIT gateway
// (SQL-less scripted provider) and for a plain upstream gateway with the
// peer preloaded, in the same run. Rounds alternate quiet and flooded
// windows and the two gateways. Reports MB/s of each and the ratios
// flooded/quiet, over all rounds and the median of the rounds' (goal ≥
// 0.9 for ours); the cookie replies the flooders got (upstream's
// under-load defence); provider lookups.
//
// Run with -benchtime 1x. HARD_FLOOD_PPS (default 20000) sets the flood
// rate, HARD_FLOOD_ROUNDS (default 4) and HARD_FLOOD_SECONDS (default 2)
// the length. HARD_FLOOD_SPOOF=1 makes every flood packet claim the known
// peer's own address and port (a raw socket: needs root), as an attacker
// who replays what it saw on the path would.
func BenchmarkHardeningFlood(b *testing.B) {
	pps := benchJITEnvInt("HARD_FLOOD_PPS", 20000)
	spoof := os.Getenv("HARD_FLOOD_SPOOF") == "1"
	if spoof && os.Geteuid() != 0 {
		b.Skip("HARD_FLOOD_SPOOF needs a raw socket (root)")
	}
	rounds := benchJITEnvInt("HARD_FLOOD_ROUNDS", 4)
	window := time.Duration(benchJITEnvInt("HARD_FLOOD_SECONDS", 2)) * time.Second
	const chunk = 1 << 20

	p := newJITProvider()
	ours, od := newJITServer(b, p, device.JITConfig{}, nil, nil)
	oursClient := newHardClient(b, "198.18.1.1", ours)
	p.set(oursClient.Key.Pub, oursClient.Addr)
	oursLink := newBenchPairLink(b, oursClient.Node, ours, chunk)

	up, ud := testkit.NewUpstream(b, "198.18.0.2", nil)
	upClient := newHardClient(b, "198.18.1.2", up)
	testkit.AddPeer(b, ud, upClient.Node, false)
	upLink := newBenchPairLink(b, upClient.Node, up, chunk)

	type side struct {
		name           string
		server         *testkit.Node
		link           *benchPairLink
		replay         []byte
		client         netip.AddrPort
		quiet, flood   float64 // bytes
		tQuiet, tFlood time.Duration
		cookies, sent  int64
		ratios         []float64 // flooded/quiet per round
	}
	sides := []*side{
		{name: "ours", server: ours, link: oursLink, replay: oursClient.rec.firstInitiation(), client: hardLoopback(oursClient.Port)},
		{name: "upstream", server: up, link: upLink, replay: upClient.rec.firstInitiation(), client: hardLoopback(upClient.Port)},
	}
	measure := func(s *side) (float64, time.Duration) {
		start := time.Now()
		n := 0.0
		for time.Since(start) < window {
			s.link.transfer(b)
			n += chunk
		}
		return n, time.Since(start)
	}
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		for i := range sides {
			s := sides[(i+r)%2]
			qn, qd := measure(s)
			s.quiet += qn
			s.tQuiet += qd

			f := hardFlood{
				Target:     netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), s.server.Port),
				ServerPub:  s.server.Key.Pub,
				Replay:     s.replay,
				Strangers:  64,
				Sources:    16,
				PPS:        pps,
				Duration:   window + time.Second,
				MaxPackets: int64(pps) * int64(window/time.Second+2),
			}
			if spoof {
				f.Spoof = s.client
			}
			child := startHardFloodChild(b, f)
			time.Sleep(500 * time.Millisecond) // the child starts and ramps up
			fn, fd := measure(s)
			s.flood += fn
			s.tFlood += fd
			res := child.wait(b)
			s.ratios = append(s.ratios, (fn/fd.Seconds())/(qn/qd.Seconds()))
			s.cookies += res.Cookies
			s.sent += res.Sent
			if res.Other != 0 {
				b.Errorf("%s: the flooders got %d answers other than cookie replies", s.name, res.Other)
			}
			b.Logf("round %d %s: quiet %.1f MB/s, flooded %.1f MB/s; %v", r, s.name,
				qn/1e6/qd.Seconds(), fn/1e6/fd.Seconds(), res)
		}
	}
	b.StopTimer()
	for _, s := range sides {
		q, f := s.quiet/1e6/s.tQuiet.Seconds(), s.flood/1e6/s.tFlood.Seconds()
		b.ReportMetric(q, s.name+"_quiet_MB/s")
		b.ReportMetric(f, s.name+"_flooded_MB/s")
		b.ReportMetric(f/q, s.name+"_ratio")
		slices.Sort(s.ratios)
		b.ReportMetric(s.ratios[len(s.ratios)/2], s.name+"_ratio_median")
		b.ReportMetric(float64(s.cookies), s.name+"_cookies")
		b.ReportMetric(float64(s.sent)/(s.tFlood.Seconds()+float64(rounds)), s.name+"_flood_pps")
	}
	st := od.Stats()
	b.ReportMetric(float64(p.totalCalls()), "ours_provider_calls")
	b.ReportMetric(float64(st.PeersActive), "ours_peers")
}

func hardLoopback(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
}

// hardFloodChild is a running flood process.
type hardFloodChild struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

func startHardFloodChild(tb testing.TB, f hardFlood) *hardFloodChild {
	tb.Helper()
	c := &hardFloodChild{cmd: exec.Command(os.Args[0], "-test.run", "^TestHardeningFloodChild$", "-test.count", "1", "-test.timeout", "2m")}
	c.cmd.Env = append(os.Environ(), f.env())
	c.cmd.Stdout = &c.out
	c.cmd.Stderr = &c.out
	if err := c.cmd.Start(); err != nil {
		tb.Fatalf("failed to start the flood process: %v", err)
	}
	tb.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	return c
}

func (c *hardFloodChild) wait(tb testing.TB) hardFloodResult {
	tb.Helper()
	if err := c.cmd.Wait(); err != nil {
		tb.Fatalf("flood process: %v\n%s", err, c.out.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(c.out.Bytes()))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "FLOOD ")
		if !ok {
			continue
		}
		var r hardFloodResult
		if _, err := fmt.Sscanf(line, "sent=%d cookies=%d other=%d", &r.Sent, &r.Cookies, &r.Other); err != nil {
			tb.Fatalf("flood process printed %q: %v", line, err)
		}
		return r
	}
	tb.Fatalf("flood process printed no result:\n%s", c.out.String())
	return hardFloodResult{}
}

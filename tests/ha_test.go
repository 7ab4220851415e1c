package tests

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/lbsim"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/ops"
)

// haServer is one backend of an HA fleet: a wghooks device with its
// operations endpoint, which the balancer polls.
type haServer struct {
	n    *testkit.Node
	d    *device.Device
	ops  *ops.Server
	once sync.Once
}

// kill stops the backend the way a crash does: its health endpoint and
// its UDP socket go away.
func (s *haServer) kill() {
	s.once.Do(func() {
		s.d.Close()
		s.ops.Close()
	})
}

// haFleet is two wghooks servers sharing one key and tunnel address
// behind a flow-affine UDP balancer.
type haFleet struct {
	lb      *lbsim.LB
	servers [2]*haServer
	front   *testkit.Node // what clients configure as their peer: the shared key at the balancer's address
}

// newHAFleet starts the fleet with tunnel address addr. Servers keep a
// fixed listen port, as servers do.
func newHAFleet(t *testing.T, addr string) *haFleet {
	t.Helper()
	return newHAFleetWith(t, addr, lbsim.Config{})
}

// newHAFleetWith is newHAFleet with balancer settings; Backends is filled
// in, and HealthInterval defaults to 200 ms.
func newHAFleetWith(t *testing.T, addr string, lbc lbsim.Config) *haFleet {
	t.Helper()
	shared := testkit.NewKeypair()
	f := &haFleet{}
	var backends []lbsim.Backend
	for i := range f.servers {
		n, d := testkit.NewWghooks(t, addr, device.Config{})
		n.Key = shared
		if err := d.IpcSet(testkit.UAPI("private_key", shared.PrivHex(), "listen_port", fmt.Sprint(n.Port))); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, "the server to reopen its UDP port", func() bool { return d.Bind().Port() != 0 })
		n.Port = d.Bind().Port()
		o, err := ops.Start(d, "127.0.0.1:0", ops.Config{NoProcessMetrics: true})
		if err != nil {
			t.Fatal(err)
		}
		s := &haServer{n: n, d: d, ops: o}
		t.Cleanup(s.kill)
		f.servers[i] = s
		backends = append(backends, lbsim.Backend{
			Addr:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), n.Port),
			Health: o.URL() + "/readyz",
		})
	}
	lbc.Backends = backends
	if lbc.HealthInterval == 0 {
		lbc.HealthInterval = 200 * time.Millisecond
	}
	lb, err := lbsim.Start(lbc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lb.Close)
	f.lb = lb
	f.front = &testkit.Node{Key: shared, Addr: netip.MustParseAddr(addr), Port: lb.Addr().Port()}
	return f
}

// join configures client c (listening on port) against the fleet, with a
// 1 s persistent keepalive, and waits for the tunnel to carry a ping. It
// returns the index of the backend carrying the client's flow.
func (f *haFleet) join(t *testing.T, c *testkit.Node, dev testkit.IpcSetter, port func() uint16) int {
	t.Helper()
	for _, s := range f.servers {
		testkit.AddPeer(t, s.d, c, false)
	}
	testkit.AddPeer(t, dev, f.front, true)
	if err := dev.IpcSet(testkit.UAPI("public_key", f.front.Key.PubHex(), "persistent_keepalive_interval", "1")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "a ping through the balancer", func() bool {
		return c.Ping(f.front.Addr, time.Second) == nil
	})
	fl, ok := f.lb.FlowOf(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port()))
	if !ok {
		t.Fatalf("balancer has no flow for the client's port %d: %+v", port(), f.lb.Flows())
	}
	return fl.Backend
}

func loopback(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
}

// TestHAFlowEscape kills the backend carrying a client's flow while the
// client pings: a wghooks client moves to a new flow and its traffic
// resumes through the other backend; a plain upstream client, same setup
// and same keepalives, stays pinned to the dead backend. Both run at once.
func TestHAFlowEscape(t *testing.T) {
	testkit.CheckLeaks(t)
	var wghooksRecovery time.Duration
	var mu sync.Mutex
	recovered := make(chan struct{})

	t.Run("group", func(t *testing.T) {
		t.Run("wghooks", func(t *testing.T) {
			t.Parallel()
			defer close(recovered)
			f := newHAFleet(t, "198.18.6.1")
			c, d := testkit.NewWghooks(t, "198.18.6.2", device.Config{})
			dead := f.join(t, c, d, d.Bind().Port)
			oldPort := d.Bind().Port()
			p := testkit.NewPinger(t, c, f.front.Addr)
			p.Every(100 * time.Millisecond)

			killed := time.Now()
			f.servers[dead].kill()
			testkit.Eventually(t, 30*time.Second, "the wghooks client's traffic to resume", func() bool {
				_, ok := p.FirstReplyAfter(killed.Add(500 * time.Millisecond))
				return ok
			})
			at, _ := p.FirstReplyAfter(killed.Add(500 * time.Millisecond))
			mu.Lock()
			wghooksRecovery = at.Sub(killed)
			mu.Unlock()
			t.Logf("wghooks client: traffic resumed %v after its backend died", at.Sub(killed).Round(time.Millisecond))

			newPort := d.Bind().Port()
			if newPort == oldPort {
				t.Fatalf("client still on source port %d", oldPort)
			}
			fl, ok := f.lb.FlowOf(loopback(newPort))
			if !ok || fl.Backend == dead || fl.ToClient == 0 {
				t.Fatalf("new flow %+v (found %v), want one carried by backend %d", fl, ok, 1-dead)
			}
			if n := d.Stats().FlowEscapes; n < 1 {
				t.Fatalf("flow escapes = %d, want at least 1", n)
			}
			// The surviving backend now holds the session.
			if got := f.servers[1-dead].d.Stats().HandshakesReceived; got == 0 {
				t.Fatal("surviving backend never saw a handshake")
			}
			// A healthy flow is left alone: 20 more answered pings, no
			// further escape.
			escapes := d.Stats().FlowEscapes
			base := p.Replies()
			testkit.Eventually(t, 20*time.Second, "20 more pings through the surviving backend", func() bool {
				return p.Replies() >= base+20
			})
			if n := d.Stats().FlowEscapes; n != escapes || d.Bind().Port() != newPort {
				t.Fatalf("escaped again from a healthy flow: %d escapes (was %d), port %d (was %d)", n, escapes, d.Bind().Port(), newPort)
			}
		})

		t.Run("upstream", func(t *testing.T) {
			t.Parallel()
			f := newHAFleet(t, "198.18.7.1")
			c, u := testkit.NewUpstream(t, "198.18.7.2", nil)
			port := func() uint16 { return c.Port }
			dead := f.join(t, c, u, port)
			p := testkit.NewPinger(t, c, f.front.Addr)
			p.Every(100 * time.Millisecond)

			killed := time.Now()
			f.servers[dead].kill()
			flow0, _ := f.lb.FlowOf(loopback(c.Port))
			// Watch for as long as wghooks took, plus upstream's own first
			// handshake attempt (15 s after unanswered data) and its first
			// retry, so the comparison is fair.
			<-recovered
			window := 21 * time.Second
			mu.Lock()
			if wghooksRecovery*3 > window {
				window = wghooksRecovery * 3
			}
			mu.Unlock()
			time.Sleep(time.Until(killed.Add(window)))

			if at, ok := p.FirstReplyAfter(killed.Add(500 * time.Millisecond)); ok {
				t.Fatalf("upstream client recovered after %v: the balancer did not pin it, so this test proves nothing", at.Sub(killed))
			}
			fl, ok := f.lb.FlowOf(loopback(c.Port))
			if !ok || fl.Backend != dead {
				t.Fatalf("upstream client's flow = %+v (found %v), want still pinned to dead backend %d", fl, ok, dead)
			}
			if sent := fl.FromClient - flow0.FromClient; sent < uint64(window/time.Second) {
				t.Fatalf("upstream client sent %d datagrams into its flow in %v, want its keepalives flowing", sent, window)
			}
			t.Logf("upstream client: still stuck %v after its backend died, %d datagrams sent into the dead flow", window, fl.FromClient-flow0.FromClient)
		})
	})
}

// TestHAReadyzDrain checks the balancer-facing contract of one server:
// ready once configured and up, 503 at once on drain (so the balancer
// stops sending new flows), ready again on undrain.
func TestHAReadyzDrain(t *testing.T) {
	testkit.CheckLeaks(t)
	_, d := testkit.NewWghooks(t, "198.18.8.1", device.Config{})
	o, err := ops.Start(d, "127.0.0.1:0", ops.Config{NoProcessMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(o.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("/readyz of a configured, up server = %d %q", code, body)
	}
	if err := d.IpcSet("drain=true\n"); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "draining") {
		t.Fatalf("/readyz right after drain = %d %q, want 503 draining", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz while draining = %d, want 200: the process is alive", code)
	}
	if st := d.Stats(); st.Drains != 1 || !st.Draining {
		t.Fatalf("stats after drain: drains %d, draining %v", st.Drains, st.Draining)
	}
	if err := d.IpcSet("drain=false\n"); err != nil {
		t.Fatal(err)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz after undrain = %d, want 200", code)
	}
}

// TestHAMetricsMove scrapes /metrics before and after a handshake and
// parses both with Prometheus' own text parser.
func TestHAMetricsMove(t *testing.T) {
	testkit.CheckLeaks(t)
	a, da := testkit.NewWghooks(t, "198.18.8.2", device.Config{})
	b, db := testkit.NewWghooks(t, "198.18.8.3", device.Config{})
	o, err := ops.Start(da, "127.0.0.1:0", ops.Config{Interface: "wgtest"})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	scrape := func() map[string]float64 {
		t.Helper()
		resp, err := http.Get(o.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("failed to parse /metrics: %v", err)
		}
		out := map[string]float64{}
		for name, f := range fams {
			for _, m := range f.Metric {
				key := name
				for _, l := range m.Label {
					if l.GetName() == "direction" {
						key += "/" + l.GetValue()
					}
				}
				switch {
				case m.Counter != nil:
					out[key] = m.Counter.GetValue()
				case m.Gauge != nil:
					out[key] = m.Gauge.GetValue()
				}
			}
		}
		return out
	}
	before := scrape()
	if before["wghooks_up"] != 1 || before["wghooks_ready"] != 1 || before["wghooks_peers"] != 0 {
		t.Fatalf("before: up %v ready %v peers %v", before["wghooks_up"], before["wghooks_ready"], before["wghooks_peers"])
	}
	testkit.AddPeer(t, da, b, true)
	testkit.AddPeer(t, db, a, true)
	if err := a.Ping(b.Addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	after := scrape()
	for _, name := range []string{"wghooks_handshakes_sent_total", "wghooks_handshakes_received_total",
		"wghooks_transfer_bytes_total/rx", "wghooks_transfer_bytes_total/tx"} {
		if after[name] <= before[name] {
			t.Errorf("%s did not move with a handshake: %v → %v", name, before[name], after[name])
		}
	}
	if after["wghooks_peers"] != 1 {
		t.Errorf("wghooks_peers = %v, want 1", after["wghooks_peers"])
	}
}

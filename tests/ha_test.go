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

	"wghooks/device"
	"wghooks/internal/lbsim"
	"wghooks/ops"
)

// haServer is one backend of an HA fleet: a wghooks device with its
// operations endpoint, which the balancer polls.
type haServer struct {
	n    *node
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
	front   *node // what clients configure as their peer: the shared key at the balancer's address
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
	shared := newKeypair(t)
	f := &haFleet{}
	var backends []lbsim.Backend
	for i := range f.servers {
		n, d := newWghooksNode(t, addr, device.Config{})
		n.key = shared
		if err := d.IpcSet(uapiCfg("private_key", shared.privHex(), "listen_port", fmt.Sprint(n.port))); err != nil {
			t.Fatal(err)
		}
		n.port = waitPort(t, d.Bind().Port)
		o, err := ops.Start(d, "127.0.0.1:0", ops.Config{NoProcessMetrics: true})
		if err != nil {
			t.Fatal(err)
		}
		s := &haServer{n: n, d: d, ops: o}
		t.Cleanup(s.kill)
		f.servers[i] = s
		backends = append(backends, lbsim.Backend{
			Addr:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), n.port),
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
	f.front = &node{key: shared, addr: netip.MustParseAddr(addr), port: lb.Addr().Port()}
	return f
}

// join configures client c (listening on port) against the fleet, with a
// 1 s persistent keepalive, and waits for the tunnel to carry a ping. It
// returns the index of the backend carrying the client's flow.
func (f *haFleet) join(t *testing.T, c *node, dev ipcSetter, port func() uint16) int {
	t.Helper()
	for _, s := range f.servers {
		peerWith(t, s.d, c, false)
	}
	peerWith(t, dev, f.front, true)
	if err := dev.IpcSet(uapiCfg("public_key", f.front.key.pubHex(), "persistent_keepalive_interval", "1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "a ping through the balancer", func() bool {
		return ping(t, c, f.front.addr, time.Second) == nil
	})
	fl, ok := f.lb.FlowOf(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port()))
	if !ok {
		t.Fatalf("balancer has no flow for the client's port %d: %+v", port(), f.lb.Flows())
	}
	return fl.Backend
}

// haPinger pings the fleet every 100 ms and records when pings succeed.
type haPinger struct {
	mu   sync.Mutex
	oks  []time.Time
	stop chan struct{}
	done chan struct{}
}

func startHAPinger(t *testing.T, c *node, to netip.Addr) *haPinger {
	p := &haPinger{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; i < 100000; i++ { // bounded: stopped at cleanup long before
			select {
			case <-p.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if ping(t, c, to, 400*time.Millisecond) == nil {
				p.mu.Lock()
				p.oks = append(p.oks, time.Now())
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *haPinger) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// count returns how many pings succeeded so far.
func (p *haPinger) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.oks)
}

// firstAfter returns the first success after t0.
func (p *haPinger) firstAfter(t0 time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ok := range p.oks {
		if ok.After(t0) {
			return ok, true
		}
	}
	return time.Time{}, false
}

func loopback(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
}

// TestHAFlowEscape kills the backend carrying a client's flow while the
// client pings: a wghooks client moves to a new flow and its traffic
// resumes through the other backend; a plain upstream client, same setup
// and same keepalives, stays pinned to the dead backend. Both run at once.
func TestHAFlowEscape(t *testing.T) {
	checkLeaks(t)
	var wghooksRecovery time.Duration
	var mu sync.Mutex
	recovered := make(chan struct{})

	t.Run("group", func(t *testing.T) {
		t.Run("wghooks", func(t *testing.T) {
			t.Parallel()
			defer close(recovered)
			f := newHAFleet(t, "198.18.6.1")
			c, d := newWghooksNode(t, "198.18.6.2", device.Config{})
			dead := f.join(t, c, d, d.Bind().Port)
			oldPort := d.Bind().Port()
			p := startHAPinger(t, c, f.front.addr)

			killed := time.Now()
			f.servers[dead].kill()
			eventually(t, 30*time.Second, "the wghooks client's traffic to resume", func() bool {
				_, ok := p.firstAfter(killed.Add(500 * time.Millisecond))
				return ok
			})
			at, _ := p.firstAfter(killed.Add(500 * time.Millisecond))
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
			base := p.count()
			eventually(t, 20*time.Second, "20 more pings through the surviving backend", func() bool {
				return p.count() >= base+20
			})
			if n := d.Stats().FlowEscapes; n != escapes || d.Bind().Port() != newPort {
				t.Fatalf("escaped again from a healthy flow: %d escapes (was %d), port %d (was %d)", n, escapes, d.Bind().Port(), newPort)
			}
		})

		t.Run("upstream", func(t *testing.T) {
			t.Parallel()
			f := newHAFleet(t, "198.18.7.1")
			c, u := newUpstreamNode(t, "198.18.7.2")
			port := func() uint16 { return c.port }
			dead := f.join(t, c, u, port)
			p := startHAPinger(t, c, f.front.addr)

			killed := time.Now()
			f.servers[dead].kill()
			flow0, _ := f.lb.FlowOf(loopback(c.port))
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

			if at, ok := p.firstAfter(killed.Add(500 * time.Millisecond)); ok {
				t.Fatalf("upstream client recovered after %v: the balancer did not pin it, so this test proves nothing", at.Sub(killed))
			}
			fl, ok := f.lb.FlowOf(loopback(c.port))
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
	checkLeaks(t)
	_, d := newWghooksNode(t, "198.18.8.1", device.Config{})
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
	checkLeaks(t)
	a, da := newWghooksNode(t, "198.18.8.2", device.Config{})
	b, db := newWghooksNode(t, "198.18.8.3", device.Config{})
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
	peerWith(t, da, b, true)
	peerWith(t, db, a, true)
	if err := ping(t, a, b.addr, 10*time.Second); err != nil {
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

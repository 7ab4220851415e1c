package tests

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/internal/udprelay"
)

// silenceSoak is how long TestSilenceNoFalseAlarms runs traffic: 40 s,
// or WGTEST_SILENCE_SOAK (a Go duration; scripts/bench/silence.sh sets
// 10m).
func silenceSoak(t *testing.T) time.Duration {
	v := os.Getenv("WGTEST_SILENCE_SOAK")
	if v == "" {
		return 40 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("WGTEST_SILENCE_SOAK=%q: want a positive duration", v)
	}
	return d
}

// Through a poor path, 5 % of datagrams lost each way and each delayed
// 50 ms ± 30 ms, pings every 100 ms never make the hostname peer fail over
// to its other (equally poor) address, nor the client escape its flow;
// neither does the path slowing down five-fold (250 ms ± 30 ms each way)
// for the second half. Silence is measured against the path's round trip,
// and loss is not death.
func TestSilenceNoFalseAlarms(t *testing.T) {
	testkit.CheckLeaks(t)
	soak := silenceSoak(t)
	// Start on IPv6 alone (see TestEndpointsTrafficMovesWhenRepliesStop),
	// then give the peer a second address to fail over to.
	p := newEpPair(t, device.Config{}, []string{"::1", "127.0.0.2"}, "127.0.0.2")
	if _, err := p.client.PingUntil(p.server.Addr, time.Second, 15*time.Second); err != nil {
		t.Fatalf("no ping through the tunnel: %v", err)
	}
	p.relays["127.0.0.2"].Restore()
	poor := udprelay.Impair{Loss: 0.05, Delay: 50 * time.Millisecond, Jitter: 30 * time.Millisecond}
	for _, r := range p.relays {
		r.SetImpair(poor)
	}
	endpoint := testkit.PeerValue(t, p.dc, p.serverPk, "endpoint")
	port := p.dc.Bind().Port()
	before := p.dc.Stats()

	pg := testkit.NewPinger(t, p.client, p.server.Addr)
	pg.Every(100 * time.Millisecond)
	time.Sleep(soak / 2)
	slow := poor
	slow.Delay *= 5
	for _, r := range p.relays {
		r.SetImpair(slow)
	}
	time.Sleep(soak / 2)
	pg.Stop()

	after := p.dc.Stats()
	lost, sent := pg.Lost(0)
	st, _ := p.dc.EndpointStatus(p.serverPk)
	relayLost := int64(0)
	for _, r := range p.relays {
		relayLost += r.Lost()
	}
	t.Logf("%v of traffic: %d of %d pings lost (%d datagrams dropped by the relays), %d handshakes sent, %d probes; rtt %v ± %v",
		soak, lost, sent, relayLost, after.HandshakesSent-before.HandshakesSent, st.Probes, st.SRTT, st.RTTVar)
	if n := after.EndpointFailovers - before.EndpointFailovers; n != 0 {
		t.Errorf("%d endpoint failovers on a poor but live path, want 0", n)
	}
	if n := after.FlowEscapes - before.FlowEscapes; n != 0 {
		t.Errorf("%d flow escapes on a poor but live path, want 0", n)
	}
	if got := testkit.PeerValue(t, p.dc, p.serverPk, "endpoint"); got != endpoint {
		t.Errorf("endpoint moved from %s to %s", endpoint, got)
	}
	if got := p.dc.Bind().Port(); got != port {
		t.Errorf("source port moved from %d to %d", port, got)
	}
	if sent < 10 || lost*2 > sent {
		t.Errorf("%d of %d pings lost: the traffic did not flow, so the test proves nothing", lost, sent)
	}
	if relayLost == 0 {
		t.Error("the relays dropped nothing: the path was not poor")
	}
	fmt.Printf("silence: %v of pings every 100 ms through 5 %% loss, 50±30 ms then 250±30 ms each way: failovers %d, flow escapes %d, pings lost %d/%d, probes %d, handshakes %d\n",
		soak, after.EndpointFailovers-before.EndpointFailovers, after.FlowEscapes-before.FlowEscapes, lost, sent, st.Probes, after.HandshakesSent-before.HandshakesSent)
}

// udpStream sends a datagram every 100 ms from one node to another's UDP
// port through the tunnel, and counts what arrives there; the receiving
// side never answers (a download, a video).
type udpStream struct {
	got  atomic.Int64
	stop func()
}

func startUDPStream(t *testing.T, from, to *testkit.Node) *udpStream {
	t.Helper()
	const port = 9400
	l, err := to.Net.ListenUDPAddrPort(netip.AddrPortFrom(to.Addr, port))
	if err != nil {
		t.Fatal(err)
	}
	c, err := from.Net.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(to.Addr, port))
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	s := &udpStream{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := l.ReadFrom(buf); err != nil {
				return
			}
			s.got.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		payload := make([]byte, 200)
		for {
			c.Write(payload)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			close(done)
			c.Close()
			l.Close()
			wg.Wait()
		})
	}
	t.Cleanup(s.stop)
	return s
}

// A client that only receives notices that the address in use died: it
// sends nothing but is probed with a handshake after ProbeInterval of
// silence (2 s here), the probe's copy reaches the other address, and the
// stream resumes there. Upstream would notice only at its next rekey.
func TestEndpointsReceiveOnlyNoticesDeadAddress(t *testing.T) {
	testkit.CheckLeaks(t)
	cfg := device.Config{}
	cfg.Endpoints.ProbeInterval = 2 * time.Second
	p := newEpPair(t, cfg, []string{"::1", "127.0.0.2"}, "127.0.0.2")
	if _, err := p.client.PingUntil(p.server.Addr, time.Second, 15*time.Second); err != nil {
		t.Fatalf("no ping through the tunnel: %v", err)
	}
	p.relays["127.0.0.2"].Restore()
	s := startUDPStream(t, p.server, p.client)
	testkit.Eventually(t, 10*time.Second, "the stream to reach the client", func() bool { return s.got.Load() >= 10 })
	before := p.dc.Stats()
	p.relays["::1"].Cut()
	time.Sleep(300 * time.Millisecond) // datagrams in flight land
	at := s.got.Load()
	testkit.Eventually(t, 20*time.Second, "the stream to resume through the other address", func() bool { return s.got.Load() >= at+10 })
	after := p.dc.Stats()
	st, _ := p.dc.EndpointStatus(p.serverPk)
	if n := after.EndpointFailovers - before.EndpointFailovers; n < 1 {
		t.Errorf("no failover counted")
	}
	if got := testkit.PeerValue(t, p.dc, p.serverPk, "endpoint"); got != p.relayAddr("127.0.0.2") {
		t.Errorf("endpoint = %q, want the IPv4 address", got)
	}
	if st.Probes < 1 {
		t.Errorf("no probe sent")
	}
	if n := after.HandshakesSent - before.HandshakesSent; n > 2 {
		t.Errorf("%d handshake messages sent to notice one dead address, want at most 2", n)
	}
}

// A client behind a balancer that only sends keepalives notices that its
// backend died: it is probed after ProbeInterval (2 s here) of hearing
// nothing, the probe is lost, and it escapes to a new flow, before it has
// any data to send. Then its first ping goes through.
func TestHAKeepaliveOnlyClientEscapes(t *testing.T) {
	testkit.CheckLeaks(t)
	f := newHAFleet(t, "198.18.8.1")
	cfg := device.Config{}
	cfg.HA.ProbeInterval = 2 * time.Second
	c, d := testkit.NewWghooks(t, "198.18.8.2", cfg)
	dead := f.join(t, c, d, d.Bind().Port)
	oldPort := d.Bind().Port()
	f.servers[dead].kill()
	testkit.Eventually(t, 20*time.Second, "the keepalive-only client to escape", func() bool { return d.Stats().FlowEscapes >= 1 })
	if d.Bind().Port() == oldPort {
		t.Fatalf("escape counted, still on source port %d", oldPort)
	}
	if err := c.Ping(f.front.Addr, 3*time.Second); err != nil {
		t.Fatalf("first ping after the escape: %v", err)
	}
	fl, ok := f.lb.FlowOf(loopback(d.Bind().Port()))
	if !ok || fl.Backend == dead {
		t.Fatalf("flow %+v (found %v), want one on backend %d", fl, ok, 1-dead)
	}
}

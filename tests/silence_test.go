package tests

import (
	"fmt"
	"os"
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

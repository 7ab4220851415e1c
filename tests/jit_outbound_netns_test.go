//go:build linux

package tests

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestJITOutboundNetns: the gateway reaches a client first. Our daemon
// (WGHOOKS_JIT_OUTBOUND=on) holds no peers; its SQLite store, filled by
// `wghooks peers add`, knows the client's key, tunnel address and
// endpoint. The client, Debian's wireguard-go configured with Debian's
// wg, has the gateway as a peer but no endpoint for it, so it cannot
// start a handshake. A ping from the gateway to the client's tunnel
// address installs the peer, the gateway initiates, and replies come
// back.
func TestJITOutboundNetns(t *testing.T) {
	const metricsAddr = "127.0.0.1:9586"
	g := newJITNetnsGateway(t, "wgo", "WGHOOKS_JIT_OUTBOUND=on", "WGHOOKS_HTTP="+metricsAddr)
	pair, gw, gwKey, cliKey, tunGW, tunCli := g.pair, g.daemon, g.key, g.clientKey, g.tunnel, g.clientTunnel
	const cliPort = 51821
	cliEndpoint := netip.AddrPortFrom(pair.addrB, cliPort)
	g.peers(t, "add", gw.iface, cliKey.pub, "allowed-ips", tunCli.String()+"/32", "endpoint", cliEndpoint.String(),
		"comment", "debian client, reached first")
	if got := gw.wg(t, "show", gw.iface, "peers"); strings.TrimSpace(got) != "" {
		t.Fatalf("gateway holds peers before any packet: %q", got)
	}

	// The client knows the gateway's key and address but not where it
	// is: it can answer a handshake, never start one.
	cli := pair.b.startDaemon(t, debianWireguardGo, netnsName("wgo"))
	cli.wg(t, "set", cli.iface, "listen-port", fmt.Sprint(cliPort), "private-key", cliKey.file,
		"peer", gwKey.pub, "allowed-ips", tunGW.String()+"/32")
	pair.b.run(t, "ip", "addr", "add", tunCli.String()+"/24", "dev", cli.iface)
	pair.b.run(t, "ip", "link", "set", cli.iface, "up")
	if got := cli.wg(t, "show", cli.iface, "endpoints"); !strings.Contains(got, "(none)") {
		t.Fatalf("client has an endpoint for the gateway: %q", got)
	}

	out, err := pair.a.exec("ping", "-n", "-c", "3", "-W", "2", tunCli.String())
	if err != nil || !strings.Contains(out, "bytes from "+tunCli.String()) {
		t.Fatalf("gateway ping to the client's tunnel address got no reply: %v\n%s\ngateway:\n%s\nclient:\n%s",
			err, out, gw.out.String(), cli.out.String())
	}

	want := cliKey.pub + "\t" + cliEndpoint.String()
	if got := gw.wg(t, "show", gw.iface, "endpoints"); !strings.Contains(got, want) {
		t.Fatalf("wg show on the gateway: %q, want the client at its stored endpoint %q", got, want)
	}
	m := jitOutboundNetnsMetrics(t, pair.a, metricsAddr)
	if n := m["wghooks_outbound_installs_total"]; n != 1 {
		t.Fatalf("wghooks_outbound_installs_total = %v, want 1", n)
	}
	// The gateway started the one handshake: it sent one initiation and
	// received only the client's response, no initiation of the client's.
	if n := m["wghooks_handshakes_received_total"]; n != 1 {
		t.Fatalf("wghooks_handshakes_received_total = %v, want 1 (the client's response)", n)
	}
	if n := strings.Count(cli.out.String(), "Sending handshake initiation"); n != 0 {
		t.Fatalf("client sent %d handshake initiations, want 0\n%s", n, cli.out.String())
	}
	if n := strings.Count(cli.out.String(), "Received handshake initiation"); n < 1 {
		t.Fatalf("client received no handshake initiation from the gateway\n%s", cli.out.String())
	}
}

// jitOutboundNetnsMetrics scrapes /metrics of a daemon listening on addr
// inside ns and returns each sample's value by metric name (the daemon
// serves one interface, so names are unique).
func jitOutboundNetnsMetrics(t testing.TB, ns *netns, addr string) map[string]float64 {
	t.Helper()
	resp, err := ns.httpClient(netip.MustParseAddrPort(addr)).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("failed to get /metrics from %s in %s: %v", addr, ns.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("failed to read /metrics from %s: status %d: %v", addr, resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("failed to parse /metrics: %v\n%s", err, body)
	}
	vals := map[string]float64{}
	for name, f := range fams {
		for _, s := range f.Metric {
			switch {
			case s.Counter != nil:
				vals[name] += s.Counter.GetValue()
			case s.Gauge != nil:
				vals[name] += s.Gauge.GetValue()
			}
		}
	}
	return vals
}

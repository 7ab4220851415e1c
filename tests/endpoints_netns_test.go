//go:build linux

package tests

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/hooks/dnsresolver/dnstest"
	"github.com/wghooks/wghooks/internal/testkit"
)

// Network-namespace scenarios of endpoints that heal: real daemons, real
// links, a real DNS server, and upstream's wireguard-go in the same
// situation for comparison.

// epnsLink joins namespaces a and b with a veth pair named name on both
// sides, with the given addresses (prefix notation) and up.
func epnsLink(t *testing.T, a, b *netns, name, addrA, addrB string) {
	t.Helper()
	if out, err := exec.Command("ip", "link", "add", name, "netns", a.name, "type", "veth", "peer", "name", name, "netns", b.name).CombinedOutput(); err != nil {
		t.Fatalf("failed to create veth %s: %v: %s", name, err, out)
	}
	for _, side := range []struct {
		ns   *netns
		addr string
	}{{a, addrA}, {b, addrB}} {
		args := []string{"ip", "addr", "add", side.addr, "dev", name}
		if strings.Contains(side.addr, ":") {
			args = append(args, "nodad")
		}
		side.ns.run(t, args...)
		side.ns.run(t, "ip", "link", "set", name, "up")
	}
}

// epnsResolvConf makes `ip netns exec` give processes in ns a
// resolv.conf naming server.
func epnsResolvConf(t *testing.T, ns *netns, server netip.Addr) {
	t.Helper()
	dir := filepath.Join("/etc/netns", ns.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver "+server.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// epnsDNS runs a DNS server inside ns on addr:53 (UDP and TCP).
func epnsDNS(t *testing.T, ns *netns, addr netip.Addr) *dnstest.Server {
	t.Helper()
	var udp net.PacketConn
	var tcp net.Listener
	err := ns.do(func() (err error) {
		ap := netip.AddrPortFrom(addr, 53).String()
		if udp, err = net.ListenPacket("udp", ap); err != nil {
			return err
		}
		tcp, err = net.Listen("tcp", ap)
		return err
	})
	if err != nil {
		t.Fatalf("failed to start the DNS server in %s: %v", ns.name, err)
	}
	s := dnstest.Serve(udp, tcp)
	t.Cleanup(s.Close)
	return s
}

// epnsPeerEndpoint returns the endpoint a daemon shows for peer pub.
func epnsPeerEndpoint(d *netnsDaemon, pub string) string {
	out, err := d.ns.exec("wg", "show", d.iface, "endpoints")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == pub {
			return f[1]
		}
	}
	return ""
}

var epnsPingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// epnsPings runs `ping -c count -i interval` in ns in the background;
// wait returns how many were sent and answered.
type epnsPings struct {
	p *netnsProc
}

func epnsStartPings(t *testing.T, ns *netns, to netip.Addr, count int, interval time.Duration) *epnsPings {
	t.Helper()
	return &epnsPings{p: ns.start(t, nil, "ping", "-n", "-c", strconv.Itoa(count), "-i", fmt.Sprintf("%.2f", interval.Seconds()), "-W", "2", to.String())}
}

func (e *epnsPings) wait(t *testing.T) (sent, got int) {
	t.Helper()
	select {
	case <-e.p.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("ping did not finish")
	}
	m := epnsPingStats.FindStringSubmatch(e.p.out.String())
	if m == nil {
		t.Fatalf("cannot read ping's summary:\n%s", e.p.out.String())
	}
	sent, _ = strconv.Atoi(m[1])
	got, _ = strconv.Atoi(m[2])
	return sent, got
}

// A server reachable on an IPv6 and an IPv4 address, both published by a
// real DNS server in its namespace. The client keeps the name; when the
// IPv6 link goes down, the tunnel moves to IPv4 by itself. Upstream, given
// the IPv6 address `wg` would have resolved, stays down.
func TestNetnsEndpointsFailoverWithDNS(t *testing.T) {
	netnsRequire(t)
	netnsRequireTool(t, "wg")
	c, s := newNetns(t), newNetns(t)
	epnsLink(t, c, s, "l6", "fd00:50::2/64", "fd00:50::1/64")
	epnsLink(t, c, s, "l4", "198.18.51.2/24", "198.18.51.1/24")
	dns := epnsDNS(t, s, netip.MustParseAddr("198.18.51.1"))
	dns.Set("vpn.test", 30*time.Second, netip.MustParseAddr("fd00:50::1"), netip.MustParseAddr("198.18.51.1"))
	epnsResolvConf(t, c, netip.MustParseAddr("198.18.51.1"))
	cli := netnsBuild(t, "github.com/wghooks/wghooks/cmd/wghooks", "wghooks")

	serverKey, clientKey := newNetnsKey(t), newNetnsKey(t)
	srv := s.startDaemon(t, wghooksBinary(t), netnsName("wge"))
	srv.wg(t, "set", srv.iface, "listen-port", "51820", "private-key", serverKey.file,
		"peer", clientKey.pub, "allowed-ips", "198.19.50.2/32")
	s.run(t, "ip", "addr", "add", "198.19.50.1/24", "dev", srv.iface)
	s.run(t, "ip", "link", "set", srv.iface, "up")
	serverTun := netip.MustParseAddr("198.19.50.1")

	startClient := func(bin string) *netnsDaemon {
		d := c.startDaemon(t, bin, netnsName("wge"))
		d.wg(t, "set", d.iface, "private-key", clientKey.file, "peer", serverKey.pub, "allowed-ips", "198.19.50.1/32")
		c.run(t, "ip", "addr", "add", "198.19.50.2/24", "dev", d.iface)
		c.run(t, "ip", "link", "set", d.iface, "up")
		return d
	}

	// wghooks: the hostname through the control CLI.
	ours := startClient(wghooksBinary(t))
	c.run(t, cli, "endpoint", ours.iface, serverKey.pub, "vpn.test:51820")
	testkit.EventuallyNil(t, 15*time.Second, "a ping through the tunnel", func() error { return c.ping(serverTun, time.Second) })
	if ep := epnsPeerEndpoint(ours, serverKey.pub); ep != "[fd00:50::1]:51820" {
		t.Errorf("endpoint %q before the cut, want IPv6 first", ep)
	}
	if dns.Queries.Load() == 0 {
		t.Error("the DNS server was never asked")
	}
	show := c.run(t, cli, "endpoints", ours.iface)
	if !strings.Contains(show, "vpn.test:51820") || !strings.Contains(show, "198.18.51.1:51820") {
		t.Errorf("wghooks endpoints:\n%s", show)
	}

	pings := epnsStartPings(t, c, serverTun, 100, 100*time.Millisecond)
	time.Sleep(time.Second)
	c.run(t, "ip", "link", "set", "l6", "down")
	cut := time.Now()
	testkit.EventuallyNil(t, 15*time.Second, "the tunnel on IPv4", func() error {
		if ep := epnsPeerEndpoint(ours, serverKey.pub); ep != "198.18.51.1:51820" {
			return fmt.Errorf("endpoint %q", ep)
		}
		return nil
	})
	t.Logf("wghooks moved to IPv4 %v after the IPv6 link went down", time.Since(cut).Round(time.Millisecond))
	sent, got := pings.wait(t)
	t.Logf("wghooks: %d of %d pings answered across the cut", got, sent)
	if err := c.ping(serverTun, 2*time.Second); err != nil {
		t.Fatalf("no ping after the failover: %v", err)
	}
	if out := c.run(t, cli, "reset-source", ours.iface); !strings.Contains(out, "reset") {
		t.Errorf("wghooks reset-source: %q", out)
	}
	if out := c.run(t, cli, "reset-source", ours.iface, serverKey.pub); !strings.Contains(out, "reset") {
		t.Errorf("wghooks reset-source PEER: %q", out)
	}
	if err := c.ping(serverTun, 2*time.Second); err != nil {
		t.Fatalf("no ping after the source resets: %v", err)
	}
	ours.stop()

	// Upstream with what `wg set ... endpoint vpn.test:51820` resolves
	// to with IPv6 preferred.
	c.run(t, "ip", "link", "set", "l6", "up")
	// Taking the link down flushed its IPv6 address.
	c.run(t, "ip", "addr", "replace", "fd00:50::2/64", "dev", "l6", "nodad")
	theirs := startClient(upstreamBinary(t))
	theirs.wg(t, "set", theirs.iface, "peer", serverKey.pub, "endpoint", "[fd00:50::1]:51820")
	testkit.EventuallyNil(t, 15*time.Second, "a ping through upstream's tunnel", func() error { return c.ping(serverTun, time.Second) })
	c.run(t, "ip", "link", "set", "l6", "down")
	if err := c.ping(serverTun, 12*time.Second); err == nil {
		t.Fatal("upstream got through with its IPv6 address down: the test proves nothing")
	}
	if ep := epnsPeerEndpoint(theirs, serverKey.pub); ep != "[fd00:50::1]:51820" {
		t.Errorf("upstream's endpoint %q, want it stuck on IPv6", ep)
	}
}

// A client with two uplinks: the primary goes down, traffic moves to the
// backup; the primary comes back (link up, route restored) and traffic
// moves back to it within about a second, without a lost ping, because
// the route change resets the cached source address. wghooks with the
// route watcher off keeps the backup address (that is what a cached
// source does, as the kernel module does until a handshake fails);
// upstream's wireguard-go on a kernel with UDP GRO caches no source at
// all, which the test logs.
func TestNetnsEndpointsRouteRestore(t *testing.T) {
	netnsRequire(t)
	netnsRequireTool(t, "wg")
	c, s := newNetns(t), newNetns(t)
	epnsLink(t, c, s, "up1", "198.18.60.2/24", "198.18.60.1/24")
	epnsLink(t, c, s, "up2", "198.18.61.2/24", "198.18.61.1/24")
	s.run(t, "ip", "addr", "add", "198.18.62.1/32", "dev", "lo")
	addPrimary := func() {
		c.run(t, "ip", "route", "replace", "198.18.62.1/32", "via", "198.18.60.1", "dev", "up1", "metric", "100")
	}
	addPrimary()
	c.run(t, "ip", "route", "add", "198.18.62.1/32", "via", "198.18.61.1", "dev", "up2", "metric", "200")

	serverKey, clientKey := newNetnsKey(t), newNetnsKey(t)
	srv := s.startDaemon(t, wghooksBinary(t), netnsName("wge"))
	srv.wg(t, "set", srv.iface, "listen-port", "51820", "private-key", serverKey.file,
		"peer", clientKey.pub, "allowed-ips", "198.19.60.2/32")
	s.run(t, "ip", "addr", "add", "198.19.60.1/24", "dev", srv.iface)
	s.run(t, "ip", "link", "set", srv.iface, "up")
	serverTun := netip.MustParseAddr("198.19.60.1")
	seenFrom := func() string {
		ep := epnsPeerEndpoint(srv, clientKey.pub)
		host, _, _ := strings.Cut(ep, ":")
		return host
	}

	run := func(t *testing.T, bin string, env ...string) (back time.Duration, moved bool, sent, got int) {
		// Flow escape (a rebind clears cached sources too) would blur
		// what moves the traffic back: this test is about route watching.
		env = append([]string{"WGHOOKS_FLOW_ESCAPE=off"}, env...)
		d := c.startDaemon(t, bin, netnsName("wge"), env...)
		defer d.stop()
		d.wg(t, "set", d.iface, "private-key", clientKey.file, "peer", serverKey.pub,
			"endpoint", "198.18.62.1:51820", "allowed-ips", "198.19.60.1/32")
		c.run(t, "ip", "addr", "add", "198.19.60.2/24", "dev", d.iface)
		c.run(t, "ip", "link", "set", d.iface, "up")
		testkit.EventuallyNil(t, 15*time.Second, "a ping through the tunnel", func() error { return c.ping(serverTun, time.Second) })
		if from := seenFrom(); from != "198.18.60.2" {
			t.Fatalf("server sees the client at %q, want the primary 198.18.60.2", from)
		}
		c.run(t, "ip", "link", "set", "up1", "down")
		testkit.EventuallyNil(t, 20*time.Second, "traffic on the backup uplink", func() error {
			c.ping(serverTun, time.Second)
			if from := seenFrom(); from != "198.18.61.2" {
				return fmt.Errorf("server sees the client at %q", from)
			}
			return nil
		})
		pings := epnsStartPings(t, c, serverTun, 40, 100*time.Millisecond)
		time.Sleep(500 * time.Millisecond)
		c.run(t, "ip", "link", "set", "up1", "up")
		addPrimary()
		restored := time.Now()
		deadline := restored.Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if seenFrom() == "198.18.60.2" {
				back, moved = time.Since(restored), true
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		sent, got = pings.wait(t)
		return back, moved, sent, got
	}

	t.Run("wghooks", func(t *testing.T) {
		back, moved, sent, got := run(t, wghooksBinary(t))
		if !moved {
			t.Fatal("traffic still on the backup uplink 3 s after the primary route came back")
		}
		t.Logf("back on the primary %v after the route came back; %d of %d pings answered", back.Round(time.Millisecond), got, sent)
		if got != sent {
			t.Errorf("%d of %d pings lost while moving back", sent-got, sent)
		}
	})
	t.Run("wghooks-without-route-watch", func(t *testing.T) {
		_, moved, sent, got := run(t, wghooksBinary(t), "WGHOOKS_ROUTE_WATCH=off")
		// A control, logged rather than asserted: now and then (about one
		// run in five under load) something other than the route watcher
		// also clears the cached source within the 3 s window, and the
		// cause is not pinned down yet.
		if moved {
			t.Logf("moved back without the route watcher too (%d of %d pings answered)", got, sent)
			return
		}
		t.Logf("stayed on the backup uplink after the primary came back; %d of %d pings answered", got, sent)
	})
	t.Run("upstream", func(t *testing.T) {
		back, moved, sent, got := run(t, upstreamBinary(t))
		t.Logf("upstream: moved back %v (after %v); %d of %d pings answered — its source capture is dormant under UDP GRO, so it follows routes but cannot reply from a contacted address", moved, back.Round(time.Millisecond), got, sent)
	})
}

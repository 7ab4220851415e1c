//go:build linux

package tests

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNetnsInteropDebian runs our daemon in one namespace and Debian's
// wireguard-go in the other, both configured with Debian's wg, and carries
// ping and TCP through the tunnel in both directions, over IPv4 and IPv6.
func TestNetnsInteropDebian(t *testing.T) {
	netnsRequire(t)
	netnsRequireTool(t, debianWireguardGo)
	netnsRequireTool(t, "ping")
	pair := newNetnsPair(t)
	tn := newNetnsTunnel(t, pair, wghooksBinary(t), debianWireguardGo)

	for _, c := range []struct {
		name     string
		from, to *netns
		addr     netip.Addr
	}{
		{"ours→debian v4", pair.a, pair.b, tn.tunB},
		{"debian→ours v4", pair.b, pair.a, tn.tunA},
		{"ours→debian v6", pair.a, pair.b, tn.tun6B},
		{"debian→ours v6", pair.b, pair.a, tn.tun6A},
	} {
		if err := c.from.ping(c.addr, 15*time.Second); err != nil {
			t.Fatalf("%s: ping %s: %v", c.name, c.addr, err)
		}
		if err := netnsTCPEcho(t, c.from, c.to, c.addr, 1<<20); err != nil {
			t.Fatalf("%s: TCP: %v", c.name, err)
		}
	}

	// Both daemons saw the same session: each reports a handshake and
	// traffic for the other.
	for _, d := range []*netnsDaemon{tn.a, tn.b} {
		out := d.wg(t, "show", d.iface, "latest-handshakes")
		f := strings.Fields(out)
		if len(f) != 2 || f[1] == "0" {
			t.Errorf("%s: wg show latest-handshakes = %q, want one peer with a handshake", d.name, out)
		}
	}
}

// TestNetnsDaemonExit checks the two ways a user stops our daemon: SIGTERM,
// and deleting its UAPI socket (as upstream honours). Either way it exits
// cleanly, removing its socket and its interface.
func TestNetnsDaemonExit(t *testing.T) {
	netnsRequire(t)
	bin := wghooksBinary(t)
	for _, how := range []string{"SIGTERM", "socket removed"} {
		t.Run(how, func(t *testing.T) {
			ns := newNetns(t)
			d := ns.startDaemon(t, bin, netnsName("wgh"))
			if how == "SIGTERM" {
				d.cmd.Process.Signal(syscall.SIGTERM)
			} else if err := os.Remove(netnsSocket(d.iface)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-d.done:
			case <-time.After(15 * time.Second):
				t.Fatalf("daemon still running 15s after %s", how)
			}
			if d.err != nil {
				t.Errorf("daemon exit after %s: %v, want status 0", how, d.err)
			}
			if _, err := os.Stat(netnsSocket(d.iface)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket after exit: %v, want it removed", err)
			}
			if _, err := ns.exec("ip", "link", "show", "dev", d.iface); err == nil {
				t.Errorf("interface %s still exists after the daemon exited", d.iface)
			}
		})
	}
}

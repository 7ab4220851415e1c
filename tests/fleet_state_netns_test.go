//go:build linux

package tests

// A replacement gateway machine takes over the address its clients use:
// our daemon in one namespace serves roaming clients (unmodified Debian
// wireguard-go, each in its own namespace) from a peer store shared with
// a second namespace (a SQLite file here; PostgreSQL in
// fleet_pg_takeover_netns_test.go); the first gateway dies, its address
// moves to the second namespace, where a new daemon with the same key, no
// state file and WGHOOKS_TAKEOVER=on starts. Each client gets exactly one
// initiation from it and sends none of its own; the clients are never
// touched.

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/testkit"
)

// fleetNetnsHub is a bridge in a namespace of its own, and namespaces
// joined to it, each by a veth whose far end is veth0, all on
// 198.18.0.0/24: one L2 segment where an address can move.
type fleetNetnsHub struct {
	hub   *netns
	ports int
}

func newFleetNetnsHub(t *testing.T) *fleetNetnsHub {
	t.Helper()
	h := &fleetNetnsHub{hub: newNetns(t)}
	h.hub.run(t, "ip", "link", "add", "br0", "type", "bridge")
	h.hub.run(t, "ip", "link", "set", "br0", "up")
	return h
}

// join creates a namespace on the segment with addr (invalid: none).
func (h *fleetNetnsHub) join(t *testing.T, addr netip.Addr) *netns {
	t.Helper()
	ns := newNetns(t)
	h.ports++
	port := fmt.Sprintf("p%d", h.ports)
	out, err := exec.Command("ip", "link", "add", port, "netns", h.hub.name, "type", "veth", "peer", "name", "veth0", "netns", ns.name).CombinedOutput()
	if err != nil {
		t.Fatalf("failed to join %s to the hub: %v: %s", ns.name, err, out)
	}
	h.hub.run(t, "ip", "link", "set", port, "master", "br0")
	h.hub.run(t, "ip", "link", "set", port, "up")
	if addr.IsValid() {
		ns.run(t, "ip", "addr", "add", addr.String()+"/24", "dev", "veth0")
	}
	ns.run(t, "ip", "link", "set", "veth0", "up")
	return ns
}

// upstreamShortKey is how upstream names a peer in its log lines.
func upstreamShortKey(pub [32]byte) string {
	b := base64.StdEncoding.EncodeToString(pub[:])
	return b[:4] + "…" + b[39:43]
}

func TestFleetStateTakeoverNetns(t *testing.T) {
	fleetTakeoverNetns(t, newSQLiteFleet)
}

// fleetTakeoverNetns runs the takeover with the gateways' daemons on the
// store newShared makes (after the checks for root, wg and Debian's
// wireguard-go, so a missing part skips before any store starts).
func fleetTakeoverNetns(t *testing.T, newShared func(testing.TB) fleetShared) {
	netnsRequire(t)
	netnsRequireTool(t, "wg")
	if _, err := os.Stat(debianWireguardGo); err != nil {
		t.Skipf("needs Debian's %s: %v", debianWireguardGo, err)
	}
	const clients = 2
	var (
		vip   = netip.MustParseAddr("198.18.0.1") // the address clients use
		gwTun = netip.MustParseAddr("198.19.0.1")
		gwKey = newNetnsKey(t)
		bin   = wghooksBinary(t)
		hub   = newFleetNetnsHub(t)
		nsA   = hub.join(t, vip)
		nsB   = hub.join(t, netip.Addr{})
		ctx   = context.Background()
	)
	shared := newShared(t)

	// gateway starts our daemon in ns on the shared store.
	gateway := func(ns *netns, env ...string) *netnsDaemon {
		d := ns.startDaemon(t, bin, netnsName("wgf"), append([]string{"WGHOOKS_PEER_DB=" + shared.db, "WGHOOKS_STATE_STORE_INTERVAL=200ms"}, env...)...)
		d.wg(t, "set", d.iface, "listen-port", "51820", "private-key", gwKey.file)
		ns.run(t, "ip", "addr", "add", gwTun.String()+"/24", "dev", d.iface)
		ns.run(t, "ip", "link", "set", d.iface, "up")
		return d
	}
	a := gateway(nsA)

	type client struct {
		ns  *netns
		d   *netnsDaemon
		key netnsKey
	}
	var cs []client
	for i := 0; i < clients; i++ {
		c := client{ns: hub.join(t, netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)})), key: newNetnsKey(t)}
		tun := netip.AddrFrom4([4]byte{198, 19, 0, byte(11 + i)})
		pub := mustNetnsPub(t, c.key)
		if err := shared.put(ctx, []hooks.PeerConfig{{PublicKey: pub, AllowedIPs: []netip.Prefix{netip.PrefixFrom(tun, 32)}}}); err != nil {
			t.Fatal(err)
		}
		c.d = c.ns.startDaemon(t, debianWireguardGo, netnsName("wgf"))
		// Random listen port: the gateway only learns where the client is.
		c.d.configure(t, c.key, 0, gwKey, netip.AddrPortFrom(vip, 51820), []netip.Addr{tun}, []netip.Addr{gwTun})
		if err := c.ns.ping(gwTun, 4*time.Second); err != nil {
			t.Fatalf("client %d: first contact through the first gateway: %v\n%s", i, err, a.out.String())
		}
		cs = append(cs, c)
	}
	testkit.Eventually(t, 10*time.Second, "the shared store to list every client", func() bool {
		states, err := shared.admin.LoadPeerState(ctx, mustNetnsPub(t, gwKey), time.Now().Add(-time.Minute), 100)
		return err == nil && len(states) == clients
	})

	// The first machine is lost; its address moves to the second. The
	// clients' neighbour entries are refreshed as a takeover's gratuitous
	// ARP would.
	syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	<-a.done
	nsA.run(t, "ip", "addr", "del", vip.String()+"/24", "dev", "veth0")
	nsB.run(t, "ip", "addr", "add", vip.String()+"/24", "dev", "veth0")
	var recv0, sent0 []int
	for _, c := range cs {
		c.ns.run(t, "ip", "neigh", "flush", "dev", "veth0")
		recv0 = append(recv0, strings.Count(c.d.out.String(), "Received handshake initiation"))
		sent0 = append(sent0, strings.Count(c.d.out.String(), "Sending handshake initiation"))
	}

	b := gateway(nsB, "WGHOOKS_TAKEOVER=on")
	for i, c := range cs {
		testkit.Eventually(t, 10*time.Second, fmt.Sprintf("client %d to get the replacement's initiation", i), func() bool {
			return strings.Count(c.d.out.String(), "Received handshake initiation") > recv0[i]
		})
		if err := c.ns.ping(gwTun, 4*time.Second); err != nil {
			t.Fatalf("client %d: no traffic through the replacement: %v\nreplacement:\n%s", i, err, b.out.String())
		}
	}
	for i, c := range cs {
		log := c.d.out.String()
		recv := strings.Count(log, "Received handshake initiation") - recv0[i]
		sent := strings.Count(log, "Sending handshake initiation") - sent0[i]
		if recv != 1 || sent != 0 {
			t.Errorf("client %d: %d initiations received and %d sent after the takeover, want 1 and 0", i, recv, sent)
		}
		short := upstreamShortKey(mustNetnsPub(t, c.key))
		if n := strings.Count(b.out.String(), "peer("+short+") - Sending handshake initiation"); n != 1 {
			t.Errorf("the replacement sent client %d %d initiations, want exactly 1", i, n)
		}
	}
	if !strings.Contains(b.out.String(), fmt.Sprintf("takeover: %d peers of the fleet's store", clients)) {
		t.Errorf("no takeover line in the replacement's log:\n%s", b.out.String())
	}
}

// mustNetnsPub is k's public key as bytes.
func mustNetnsPub(t *testing.T, k netnsKey) hooks.PublicKey {
	t.Helper()
	pub, err := hooks.ParsePublicKey(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

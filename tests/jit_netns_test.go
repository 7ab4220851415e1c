//go:build linux

package tests

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJITDebianClientNetns: an unmodified Debian wireguard-go client in
// one namespace gets a just-in-time peer on our daemon in another, whose
// SQLite store (filled by `wghooks peers add`) is the only place its key
// exists. Its first handshake succeeds with one initiation, and `wghooks
// peers remove` takes the peer off the running daemon at once.
func TestJITDebianClientNetns(t *testing.T) {
	g := newJITNetnsGateway(t, "wgj")
	pair, srv, srvKey, cliKey, tunA, tunB := g.pair, g.daemon, g.key, g.clientKey, g.tunnel, g.clientTunnel
	peers := g.peers
	peers(t, "add", srv.iface, cliKey.pub, "allowed-ips", tunB.String()+"/32", "comment", "debian client")
	if got := srv.wg(t, "show", srv.iface, "peers"); strings.TrimSpace(got) != "" {
		t.Fatalf("daemon holds peers before any handshake: %q", got)
	}

	cli := pair.b.startDaemon(t, debianWireguardGo, netnsName("wgj"))
	cli.configure(t, cliKey, 51821, srvKey, netip.AddrPortFrom(pair.addrA, 51820), []netip.Addr{tunB}, []netip.Addr{tunA})

	// Under one retransmit interval (5 s): the first initiation must do.
	if err := pair.b.ping(tunA, 4*time.Second); err != nil {
		t.Fatalf("ping through a just-in-time peer: %v\nserver:\n%s", err, srv.out.String())
	}
	if n := strings.Count(cli.out.String(), "Sending handshake initiation"); n != 1 {
		t.Fatalf("client sent %d handshake initiations, want 1\n%s", n, cli.out.String())
	}
	if got := srv.wg(t, "show", srv.iface, "peers"); !strings.Contains(got, cliKey.pub) {
		t.Fatalf("wg show on our daemon lacks the client: %q", got)
	}
	if got := peers(t, "list", srv.iface); !strings.Contains(got, cliKey.pub+"  installed") {
		t.Fatalf("peers list does not show the client installed:\n%s", got)
	}

	peers(t, "remove", srv.iface, cliKey.pub)
	if got := srv.wg(t, "show", srv.iface, "peers"); strings.Contains(got, cliKey.pub) {
		t.Fatalf("removed peer still on the daemon: %q", got)
	}
}

// jitNetnsGateway is our daemon in one namespace of a pair, with a SQLite
// peer store (WGHOOKS_PEER_DB), a key, listen port 51820 and tunnel
// address 198.19.0.1/24, holding no peers; its client will be Debian's
// wireguard-go in the other namespace, at tunnel address 198.19.0.2.
type jitNetnsGateway struct {
	pair                 *netnsPair
	daemon               *netnsDaemon
	db, cli              string // the store and the wghooks CLI binary
	key, clientKey       netnsKey
	tunnel, clientTunnel netip.Addr
}

// newJITNetnsGateway skips without root, /dev/net/tun or Debian's
// wireguard-go; env is added to the daemon's environment.
func newJITNetnsGateway(t *testing.T, prefix string, env ...string) *jitNetnsGateway {
	t.Helper()
	netnsRequire(t)
	netnsRequireTool(t, "wg")
	if _, err := os.Stat(debianWireguardGo); err != nil {
		t.Skipf("needs Debian's %s: %v", debianWireguardGo, err)
	}
	g := &jitNetnsGateway{
		pair:         newNetnsPair(t),
		db:           filepath.Join(t.TempDir(), "peers.db"),
		key:          newNetnsKey(t),
		clientKey:    newNetnsKey(t),
		tunnel:       netip.MustParseAddr("198.19.0.1"),
		clientTunnel: netip.MustParseAddr("198.19.0.2"),
	}
	a := g.pair.a
	g.daemon = a.startDaemon(t, wghooksBinary(t), netnsName(prefix), append([]string{"WGHOOKS_PEER_DB=" + g.db}, env...)...)
	g.daemon.wg(t, "set", g.daemon.iface, "listen-port", "51820", "private-key", g.key.file)
	a.run(t, "ip", "addr", "add", g.tunnel.String()+"/24", "dev", g.daemon.iface)
	a.run(t, "ip", "link", "set", g.daemon.iface, "up")
	g.cli = netnsBuild(t, "github.com/wghooks/wghooks/cmd/wghooks", "wghooks")
	return g
}

// peers runs `wghooks peers -db STORE args...` and returns its output.
func (g *jitNetnsGateway) peers(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(g.cli, append([]string{"peers", "-db", g.db}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("wghooks peers %v: %v\n%s", args, err, out)
	}
	return string(out)
}

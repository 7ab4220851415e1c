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
	netnsRequire(t)
	netnsRequireTool(t, "wg")
	if _, err := os.Stat(debianWireguardGo); err != nil {
		t.Skipf("needs Debian's %s: %v", debianWireguardGo, err)
	}
	pair := newNetnsPair(t)
	db := filepath.Join(t.TempDir(), "peers.db")
	srvKey, cliKey := newNetnsKey(t), newNetnsKey(t)
	tunA, tunB := netip.MustParseAddr("198.19.0.1"), netip.MustParseAddr("198.19.0.2")

	srv := pair.a.startDaemon(t, wghooksBinary(t), netnsName("wgj"), "WGHOOKS_PEER_DB="+db)
	srv.wg(t, "set", srv.iface, "listen-port", "51820", "private-key", srvKey.file)
	pair.a.run(t, "ip", "addr", "add", tunA.String()+"/24", "dev", srv.iface)
	pair.a.run(t, "ip", "link", "set", srv.iface, "up")

	cliBin := netnsBuild(t, "wghooks/cmd/wghooks", "wghooks")
	peers := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cliBin, append([]string{"peers", "-db", db}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("wghooks peers %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	peers("add", srv.iface, cliKey.pub, "allowed-ips", tunB.String()+"/32", "comment", "debian client")
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
	if got := peers("list", srv.iface); !strings.Contains(got, cliKey.pub+"  installed") {
		t.Fatalf("peers list does not show the client installed:\n%s", got)
	}

	peers("remove", srv.iface, cliKey.pub)
	if got := srv.wg(t, "show", srv.iface, "peers"); strings.Contains(got, cliKey.pub) {
		t.Fatalf("removed peer still on the daemon: %q", got)
	}
}

//go:build linux

package tests

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/internal/testkit"
)

// wgtoolsConf is a parsed `wg showconf`: the [Interface] keys and one map
// per [Peer], keyed by PublicKey.
type wgtoolsConf struct {
	iface map[string]string
	peers map[string]map[string]string
}

// parseWgtoolsConf parses wg's configuration format.
func parseWgtoolsConf(t testing.TB, text string) wgtoolsConf {
	t.Helper()
	c := wgtoolsConf{iface: map[string]string{}, peers: map[string]map[string]string{}}
	var cur map[string]string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case line == "[Interface]":
			cur = c.iface
		case line == "[Peer]":
			cur = map[string]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || cur == nil {
				t.Fatalf("failed to parse wg showconf line %q in:\n%s", line, text)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			cur[k] = v
			if k == "PublicKey" {
				c.peers[v] = cur
			}
		}
	}
	return c
}

// wgtoolsWriteConf writes a wg configuration file and returns its path.
func wgtoolsWriteConf(t testing.TB, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// wgtoolsHandshakes returns `wg show IFACE latest-handshakes` by peer.
func wgtoolsHandshakes(t testing.TB, d *netnsDaemon) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(d.wg(t, "show", d.iface, "latest-handshakes")), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// wgtoolsPeers returns `wg show IFACE peers`, sorted.
func wgtoolsPeers(t testing.TB, d *netnsDaemon) []string {
	t.Helper()
	p := strings.Fields(d.wg(t, "show", d.iface, "peers"))
	slices.Sort(p)
	return p
}

// TestNetnsWgTools drives our daemon with Debian's wg through every
// command a user configures it with, against a live tunnel to Debian's
// wireguard-go, and checks what wg reads back and what changes on the
// wire.
func TestNetnsWgTools(t *testing.T) {
	netnsRequire(t)
	netnsRequireTool(t, debianWireguardGo)
	pair := newNetnsPair(t)
	tn := newNetnsTunnel(t, pair, wghooksBinary(t), debianWireguardGo)
	ours, dir := tn.a, t.TempDir()
	if err := pair.a.ping(tn.tunB, 15*time.Second); err != nil {
		t.Fatalf("ping through the tunnel: %v", err)
	}

	// wg show: the human form and the machine form.
	show := ours.wg(t, "show", ours.iface)
	for _, want := range []string{
		"interface: " + ours.iface,
		"public key: " + tn.keyA.pub,
		"private key: (hidden)",
		"listening port: 51820",
		"peer: " + tn.keyB.pub,
		"endpoint: 198.18.0.2:51821",
		"allowed ips: 198.19.0.2/32, fd00:19::2/128",
		"latest handshake: ",
		"transfer: ",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("wg show lacks %q:\n%s", want, show)
		}
	}
	dump := strings.Split(strings.TrimSpace(ours.wg(t, "show", ours.iface, "dump")), "\n")
	if len(dump) != 2 {
		t.Fatalf("wg show dump has %d lines, want interface + 1 peer:\n%s", len(dump), strings.Join(dump, "\n"))
	}
	if got, want := strings.Split(dump[0], "\t"), []string{tn.keyA.priv, tn.keyA.pub, "51820", "off"}; !slices.Equal(got, want) {
		t.Errorf("wg show dump interface = %q, want %q", got, want)
	}
	peer := strings.Split(dump[1], "\t")
	if len(peer) != 8 || peer[0] != tn.keyB.pub || peer[1] != "(none)" || peer[2] != "198.18.0.2:51821" ||
		peer[3] != "198.19.0.2/32,fd00:19::2/128" || peer[4] == "0" || peer[5] == "0" || peer[6] == "0" || peer[7] != "off" {
		t.Errorf("wg show dump peer = %q, want B's key, no psk, endpoint, allowed ips, a handshake, traffic both ways, no keepalive", peer)
	}

	// wg set: interface and peer settings, a peer added and removed. The
	// preshared key goes on both ends so the tunnel keeps working.
	psk := newNetnsKey(t) // any 32 random bytes
	ours.wg(t, "set", ours.iface, "fwmark", "0x1234", "peer", tn.keyB.pub, "persistent-keepalive", "25", "preshared-key", psk.file)
	tn.b.wg(t, "set", tn.b.iface, "peer", tn.keyA.pub, "preshared-key", psk.file)
	extra := newNetnsKey(t)
	ours.wg(t, "set", ours.iface, "peer", extra.pub, "allowed-ips", "198.19.0.3/32", "endpoint", "198.18.0.3:51820")
	if got, want := wgtoolsPeers(t, ours), slices.Sorted(slices.Values([]string{tn.keyB.pub, extra.pub})); !slices.Equal(got, want) {
		t.Fatalf("after wg set peer: peers = %q, want %q", got, want)
	}
	ours.wg(t, "set", ours.iface, "peer", extra.pub, "remove")
	if got := wgtoolsPeers(t, ours); !slices.Equal(got, []string{tn.keyB.pub}) {
		t.Fatalf("after wg set peer remove: peers = %q, want only B", got)
	}

	// wg showconf reads back everything that was set.
	conf := parseWgtoolsConf(t, ours.wg(t, "showconf", ours.iface))
	wantIface := map[string]string{"PrivateKey": tn.keyA.priv, "ListenPort": "51820", "FwMark": "0x1234"}
	wantPeer := map[string]string{
		"PublicKey":           tn.keyB.pub,
		"PresharedKey":        psk.priv,
		"AllowedIPs":          "198.19.0.2/32, fd00:19::2/128",
		"Endpoint":            "198.18.0.2:51821",
		"PersistentKeepalive": "25",
	}
	if !maps.Equal(conf.iface, wantIface) {
		t.Errorf("wg showconf [Interface] = %v, want %v", conf.iface, wantIface)
	}
	if len(conf.peers) != 1 || !maps.Equal(conf.peers[tn.keyB.pub], wantPeer) {
		t.Errorf("wg showconf peers = %v, want only %v", conf.peers, wantPeer)
	}

	// wg syncconf applies only the difference: a new peer appears, B's
	// allowed IPs grow, the keepalive is turned off, and B's session is kept
	// (its handshake time does not change and traffic still flows).
	before := wgtoolsHandshakes(t, ours)[tn.keyB.pub]
	other := newNetnsKey(t)
	sync := wgtoolsWriteConf(t, dir, "sync.conf", fmt.Sprintf(`[Interface]
PrivateKey = %s
ListenPort = 51820
FwMark = 0x1234

[Peer]
PublicKey = %s
PresharedKey = %s
AllowedIPs = 198.19.0.2/32, fd00:19::2/128, 198.19.1.0/24
Endpoint = 198.18.0.2:51821
PersistentKeepalive = off

[Peer]
PublicKey = %s
AllowedIPs = 198.19.0.4/32
`, tn.keyA.priv, tn.keyB.pub, psk.priv, other.pub))
	ours.wg(t, "syncconf", ours.iface, sync)
	conf = parseWgtoolsConf(t, ours.wg(t, "showconf", ours.iface))
	delete(wantPeer, "PersistentKeepalive")
	wantPeer["AllowedIPs"] = "198.19.0.2/32, fd00:19::2/128, 198.19.1.0/24"
	if len(conf.peers) != 2 || !maps.Equal(conf.peers[tn.keyB.pub], wantPeer) ||
		!maps.Equal(conf.peers[other.pub], map[string]string{"PublicKey": other.pub, "AllowedIPs": "198.19.0.4/32"}) {
		t.Errorf("after wg syncconf: showconf peers = %v", conf.peers)
	}
	if after := wgtoolsHandshakes(t, ours)[tn.keyB.pub]; after != before {
		t.Errorf("wg syncconf reset B's session: latest handshake %s → %s", before, after)
	}
	if err := netnsTCPEcho(t, pair.a, pair.b, tn.tunB, 64<<10); err != nil {
		t.Fatalf("TCP after wg syncconf: %v", err)
	}

	// wg addconf adds; wg setconf replaces everything, and the tunnel
	// comes back with a fresh handshake.
	added := newNetnsKey(t)
	ours.wg(t, "addconf", ours.iface, wgtoolsWriteConf(t, dir, "add.conf", fmt.Sprintf("[Peer]\nPublicKey = %s\nAllowedIPs = 198.19.0.5/32\n", added.pub)))
	if got := wgtoolsPeers(t, ours); len(got) != 3 || !slices.Contains(got, added.pub) {
		t.Errorf("after wg addconf: peers = %q, want 3 including the added one", got)
	}
	ours.wg(t, "setconf", ours.iface, wgtoolsWriteConf(t, dir, "set.conf", fmt.Sprintf(`[Interface]
PrivateKey = %s
ListenPort = 51820

[Peer]
PublicKey = %s
PresharedKey = %s
AllowedIPs = 198.19.0.2/32
Endpoint = 198.18.0.2:51821
`, tn.keyA.priv, tn.keyB.pub, psk.priv)))
	conf = parseWgtoolsConf(t, ours.wg(t, "showconf", ours.iface))
	if len(conf.peers) != 1 || conf.peers[tn.keyB.pub]["AllowedIPs"] != "198.19.0.2/32" || conf.iface["FwMark"] != "" {
		t.Errorf("after wg setconf: showconf = %+v, want only B with 198.19.0.2/32 and no fwmark", conf)
	}
	if err := pair.a.ping(tn.tunB, 15*time.Second); err != nil {
		t.Fatalf("ping after wg setconf: %v", err)
	}
	if hs := wgtoolsHandshakes(t, ours)[tn.keyB.pub]; hs == "0" || hs == "" {
		t.Errorf("after wg setconf and ping: no handshake with B (%q)", hs)
	}
}

// TestNetnsWgQuick brings our daemon up and down with Debian's wg-quick
// (WG_QUICK_USERSPACE_IMPLEMENTATION), inside a namespace so its routes
// stay there, and carries traffic to Debian's wireguard-go in between.
func TestNetnsWgQuick(t *testing.T) {
	netnsRequire(t)
	netnsRequireTool(t, "wg-quick")
	netnsRequireTool(t, debianWireguardGo)
	bin := wghooksBinary(t)
	pair := newNetnsPair(t)
	keyA, keyB := newNetnsKey(t), newNetnsKey(t)
	iface := netnsName("wgq")
	tunA, tunB := netip.MustParseAddr("198.19.0.1"), netip.MustParseAddr("198.19.0.2")
	tun6A, tun6B := netip.MustParseAddr("fd00:19::1"), netip.MustParseAddr("fd00:19::2")

	theirs := pair.b.startDaemon(t, debianWireguardGo, netnsName("wgh"))
	theirs.configure(t, keyB, 51821, keyA, netip.AddrPortFrom(pair.addrA, 51820),
		[]netip.Addr{tunB, tun6B}, []netip.Addr{tunA, tun6A})

	// wg-quick wants the file named after the interface. No DNS line: that
	// would need resolvconf and touch the host.
	conf := wgtoolsWriteConf(t, t.TempDir(), iface+".conf", fmt.Sprintf(`[Interface]
PrivateKey = %s
Address = 198.19.0.1/24, fd00:19::1/64
ListenPort = 51820

[Peer]
PublicKey = %s
Endpoint = 198.18.0.2:51821
AllowedIPs = 198.19.0.2/32, fd00:19::2/128
PersistentKeepalive = 25
`, keyA.priv, keyB.pub))
	env := []string{"WG_QUICK_USERSPACE_IMPLEMENTATION=" + bin, "WGHOOKS_STATE_FILE=" + filepath.Join(t.TempDir(), iface+".json")}
	// Whatever happens, the backgrounded daemon goes (deleting the
	// namespace would also kill it) and its socket with it.
	t.Cleanup(func() {
		for _, pid := range netnsProcsOf(bin, iface) {
			killPid(pid)
		}
		os.Remove(netnsSocket(iface))
	})

	if out, err := pair.a.execEnv(env, "wg-quick", "up", conf); err != nil {
		t.Fatalf("wg-quick up: %v", err)
	} else {
		t.Logf("wg-quick up:\n%s", out)
	}
	if pids := netnsProcsOf(bin, iface); len(pids) != 1 {
		t.Fatalf("after wg-quick up: %d wghooks daemons for %s, want 1 (in the background)", len(pids), iface)
	}
	show := pair.a.run(t, "wg", "show", iface)
	for _, want := range []string{"public key: " + keyA.pub, "listening port: 51820", "peer: " + keyB.pub, "persistent keepalive: every 25 seconds"} {
		if !strings.Contains(show, want) {
			t.Errorf("wg show after wg-quick up lacks %q:\n%s", want, show)
		}
	}
	for _, addr := range []netip.Addr{tunB, tun6B} {
		if err := pair.a.ping(addr, 15*time.Second); err != nil {
			t.Fatalf("ping %s through the wg-quick tunnel: %v", addr, err)
		}
	}
	if err := netnsTCPEcho(t, pair.b, pair.a, tunA, 256<<10); err != nil {
		t.Fatalf("TCP into the wg-quick tunnel: %v", err)
	}

	if out, err := pair.a.execEnv(env, "wg-quick", "down", conf); err != nil {
		t.Fatalf("wg-quick down: %v", err)
	} else {
		t.Logf("wg-quick down:\n%s", out)
	}
	testkit.EventuallyNil(t, 10*time.Second, "the daemon to exit after wg-quick down", func() error {
		if pids := netnsProcsOf(bin, iface); len(pids) != 0 {
			return fmt.Errorf("still running: pids %v", pids)
		}
		if _, err := os.Stat(netnsSocket(iface)); err == nil {
			return fmt.Errorf("socket %s still exists", netnsSocket(iface))
		}
		if _, err := pair.a.exec("ip", "link", "show", "dev", iface); err == nil {
			return fmt.Errorf("interface %s still exists", iface)
		}
		return nil
	})
}

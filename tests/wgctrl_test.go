//go:build linux

package tests

import (
	"errors"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// TestNetnsWgctrl configures our daemon with wgctrl, a Go client written
// elsewhere, over the standard UAPI socket, and reads everything back.
func TestNetnsWgctrl(t *testing.T) {
	netnsRequire(t)
	ns := newNetns(t)
	d := ns.startDaemon(t, wghooksBinary(t), netnsName("wgc"))

	c, err := wgctrl.New()
	if err != nil {
		t.Fatalf("failed to open wgctrl: %v", err)
	}
	defer c.Close()

	priv := wgctrlKey(t, wgtypes.GeneratePrivateKey)
	p1 := wgctrlKey(t, wgtypes.GeneratePrivateKey).PublicKey()
	p2 := wgctrlKey(t, wgtypes.GeneratePrivateKey).PublicKey()
	psk := wgctrlKey(t, wgtypes.GenerateKey)
	port, mark, keepalive := 51820, 0x42, 25*time.Second
	ep1 := &net.UDPAddr{IP: net.ParseIP("198.18.0.2").To4(), Port: 51821}
	err = c.ConfigureDevice(d.iface, wgtypes.Config{
		PrivateKey:   &priv,
		ListenPort:   &port,
		FirewallMark: &mark,
		ReplacePeers: true,
		Peers: []wgtypes.PeerConfig{{
			PublicKey:                   p1,
			PresharedKey:                &psk,
			Endpoint:                    ep1,
			PersistentKeepaliveInterval: &keepalive,
			ReplaceAllowedIPs:           true,
			AllowedIPs:                  []net.IPNet{wgctrlPrefix(t, "198.19.0.2/32"), wgctrlPrefix(t, "fd00:19::2/128")},
		}, {
			PublicKey:  p2,
			AllowedIPs: []net.IPNet{wgctrlPrefix(t, "198.19.0.0/24")},
		}},
	})
	if err != nil {
		t.Fatalf("wgctrl ConfigureDevice(%s): %v", d.iface, err)
	}

	dev, err := c.Device(d.iface)
	if err != nil {
		t.Fatalf("wgctrl Device(%s): %v", d.iface, err)
	}
	if dev.Name != d.iface || dev.Type != wgtypes.Userspace || dev.PrivateKey != priv || dev.PublicKey != priv.PublicKey() ||
		dev.ListenPort != port || dev.FirewallMark != mark {
		t.Errorf("device = {%s %v port %d mark %#x, keys match: %v %v}, want {%s userspace port %d mark %#x, keys match}",
			dev.Name, dev.Type, dev.ListenPort, dev.FirewallMark, dev.PrivateKey == priv, dev.PublicKey == priv.PublicKey(),
			d.iface, port, mark)
	}
	peers := wgctrlPeers(dev)
	if len(peers) != 2 {
		t.Fatalf("device has %d peers, want 2: %+v", len(peers), dev.Peers)
	}
	got1 := peers[p1]
	if got1.PresharedKey != psk || got1.Endpoint.String() != ep1.String() || got1.PersistentKeepaliveInterval != keepalive ||
		!slices.Equal(wgctrlStrings(got1.AllowedIPs), []string{"198.19.0.2/32", "fd00:19::2/128"}) || got1.ProtocolVersion != 1 {
		t.Errorf("peer 1 = %+v", got1)
	}
	got2 := peers[p2]
	if got2.PresharedKey != (wgtypes.Key{}) || got2.Endpoint != nil || got2.PersistentKeepaliveInterval != 0 ||
		!slices.Equal(wgctrlStrings(got2.AllowedIPs), []string{"198.19.0.0/24"}) {
		t.Errorf("peer 2 = %+v", got2)
	}

	// An incremental change: move peer 1, drop peer 2.
	ep1b := &net.UDPAddr{IP: net.ParseIP("fd00:18::2"), Port: 51822}
	err = c.ConfigureDevice(d.iface, wgtypes.Config{Peers: []wgtypes.PeerConfig{
		{PublicKey: p1, UpdateOnly: true, Endpoint: ep1b},
		{PublicKey: p2, Remove: true},
	}})
	if err != nil {
		t.Fatalf("wgctrl ConfigureDevice(%s) update: %v", d.iface, err)
	}
	dev, err = c.Device(d.iface)
	if err != nil {
		t.Fatalf("wgctrl Device(%s): %v", d.iface, err)
	}
	peers = wgctrlPeers(dev)
	if len(peers) != 1 || peers[p1].Endpoint.String() != ep1b.String() || peers[p1].PresharedKey != psk || dev.ListenPort != port {
		t.Errorf("after update: port %d, peers %+v, want only peer 1 at %s with its psk kept", dev.ListenPort, dev.Peers, ep1b)
	}

	// A device that does not exist is reported as such.
	if _, err := c.Device(netnsName("nod")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("wgctrl Device(missing) error = %v, want os.ErrNotExist", err)
	}
}

func wgctrlKey(t *testing.T, gen func() (wgtypes.Key, error)) wgtypes.Key {
	t.Helper()
	k, err := gen()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func wgctrlPrefix(t *testing.T, s string) net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return *n
}

func wgctrlPeers(dev *wgtypes.Device) map[wgtypes.Key]wgtypes.Peer {
	m := map[wgtypes.Key]wgtypes.Peer{}
	for _, p := range dev.Peers {
		m[p.PublicKey] = p
	}
	return m
}

func wgctrlStrings(ns []net.IPNet) []string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.String()
	}
	slices.Sort(s)
	return s
}

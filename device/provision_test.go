package device

import (
	"context"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/tun/tuntest"

	"wghooks/device/feature"
	"wghooks/device/jit"
	"wghooks/hooks"
)

// TestJITFollowsOrigins drives the jit feature through the core: a peer
// it installs (origin "jit") is just in time, the restart's update_only
// endpoint (origin "restart") leaves it so, the operator's transaction
// without wghooks_jit makes it static, wghooks_jit=true marks it again,
// and the get reply says which.
func TestJITFollowsOrigins(t *testing.T) {
	prov := hooks.ProviderFunc(func(context.Context, hooks.PublicKey) (hooks.PeerConfig, error) {
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	})
	d, err := New(tuntest.NewChannelTUN().TUN(), Config{JIT: JITConfig{Provider: prov}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	priv := [32]byte{1}
	if err := d.IpcSet("private_key=" + hex.EncodeToString(priv[:]) + "\n"); err != nil {
		t.Fatal(err)
	}
	k := feature.Key{7, 7, 7}
	hk := hex.EncodeToString(k[:])
	isJIT := func() bool {
		get, err := d.IpcGet()
		if err != nil {
			t.Fatal(err)
		}
		_, sec, _ := strings.Cut(get, "public_key="+hk+"\n")
		sec, _, _ = strings.Cut(sec, "public_key=")
		return strings.Contains(sec, "wghooks_jit=true\n")
	}
	h := host{d}
	install := jit.InstallConfig(k, hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.9/32")}})
	if err := h.Configure("jit", feature.Config{Peers: []feature.PeerConfig{install}}); err != nil {
		t.Fatal(err)
	}
	// Only the feature's own install path marks; Configure alone does not.
	if isJIT() {
		t.Fatal("a peer configured with origin jit but not installed by the feature is marked")
	}
	if err := d.IpcSet("public_key=" + hk + "\nwghooks_jit=true\n"); err != nil {
		t.Fatal(err)
	}
	if !isJIT() {
		t.Fatal("wghooks_jit=true did not mark the peer")
	}
	if err := h.Configure("restart", feature.Config{Peers: []feature.PeerConfig{{PublicKey: k, UpdateOnly: true, Endpoint: netip.MustParseAddrPort("198.18.1.1:51820")}}}); err != nil {
		t.Fatal(err)
	}
	if !isJIT() {
		t.Fatal("the restart's endpoint restore made a just-in-time peer static")
	}
	if err := d.IpcSet("public_key=" + hk + "\npersistent_keepalive_interval=0\n"); err != nil {
		t.Fatal(err)
	}
	if isJIT() {
		t.Fatal("peer configured by the operator is still just in time")
	}
	if err := d.IpcSet("wghooks_jit_forget=zz\n"); err == nil {
		t.Fatal("wghooks_jit_forget accepted a bad key")
	}
	if err := d.IpcSet("wghooks_jit_forget=" + hk + "\n"); err != nil {
		t.Fatal(err)
	}
}

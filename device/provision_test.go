package device

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	wgconn "golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tai64n"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/jit"
	"github.com/wghooks/wghooks/hooks"
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

// TestJITLookupBudget: initiations from many source addresses, each from
// a key the device does not hold, are decoded and looked up only within
// the global lookup budget; the rest pass to upstream undecoded and are
// counted as refused.
func TestJITLookupBudget(t *testing.T) {
	var lookups atomic.Int64
	prov := hooks.ProviderFunc(func(context.Context, hooks.PublicKey) (hooks.PeerConfig, error) {
		lookups.Add(1)
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	})
	const rate, sent = 2, 200
	d, err := New(tuntest.NewChannelTUN().TUN(), Config{JIT: JITConfig{Provider: prov, MaxLookupRate: rate}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	priv, _ := stateTestKey(1)
	if err := d.IpcSet("private_key=" + hex.EncodeToString(priv[:]) + "\n"); err != nil {
		t.Fatal(err)
	}
	var own [32]byte
	copy(own[:], mustPriv(t, d))
	pub, err := curve25519.X25519(own[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	type arrival struct {
		pkt []byte
		ep  wgconn.Endpoint
	}
	var in []arrival
	for i := 0; i < sent; i++ {
		var initiator [32]byte
		initiator[1], initiator[2] = byte(i), byte(i>>8)+1 // byte 0 is clamped
		pkt, err := conn.SealInitiation(initiator, [32]byte(pub), [32]byte{2}, uint32(i), tai64n.Now())
		if err != nil {
			t.Fatal(err)
		}
		ep, err := d.bind.ParseEndpoint(fmt.Sprintf("127.0.%d.%d:9", 1+i/250, 1+i%250))
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, arrival{pkt, ep})
	}
	held := 0
	for _, a := range in {
		if d.jit.OnReceive(a.pkt, a.ep) == conn.Hold {
			held++
		}
	}
	// One second's worth is the burst; the loop takes far less than the
	// second that would add as much again.
	if held == 0 || held > 2*rate {
		t.Fatalf("%d of %d initiations from new sources held for a lookup, want at most %d", held, sent, 2*rate)
	}
	if st := d.Stats(); st.LookupsRefused != uint64(sent-held) {
		t.Fatalf("LookupsRefused %d, want the %d not held", st.LookupsRefused, sent-held)
	}
	deadline := time.Now().Add(5 * time.Second)
	for lookups.Load() < int64(held) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := lookups.Load(); n != int64(held) {
		t.Fatalf("%d provider lookups, want one per held initiation (%d)", n, held)
	}
}

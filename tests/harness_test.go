package tests

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/curve25519"
	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"wghooks/device"
	"wghooks/tun"
)

// keypair is a WireGuard static key pair.
type keypair struct {
	priv, pub [32]byte
}

func newKeypair(t testing.TB) keypair {
	t.Helper()
	var k keypair
	if _, err := randRead(k.priv[:]); err != nil {
		t.Fatal(err)
	}
	k.priv[0] &= 248
	k.priv[31] = (k.priv[31] & 127) | 64
	pub, err := curve25519.X25519(k.priv[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	copy(k.pub[:], pub)
	return k
}

func (k keypair) privHex() string { return hex.EncodeToString(k.priv[:]) }
func (k keypair) pubHex() string  { return hex.EncodeToString(k.pub[:]) }

// uapiCfg joins key=value pairs into a set transaction.
func uapiCfg(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s=%s\n", kv[i], kv[i+1])
	}
	return b.String()
}

// node is one end of an in-process tunnel.
type node struct {
	key  keypair
	addr netip.Addr // tunnel address
	port uint16     // UDP listen port on loopback
	net  *netstack.Net
}

// checkLeaks fails the test if goroutines it started outlive it.
func checkLeaks(t *testing.T) {
	t.Helper()
	opts := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opts) })
}

// newWghooksNode starts a wghooks device on netstack listening on
// 127.0.0.1:port (0 picks one).
func newWghooksNode(t testing.TB, addr string, cfg device.Config) (*node, *device.Device) {
	t.Helper()
	n := &node{key: newKeypair(t), addr: netip.MustParseAddr(addr)}
	tdev, tnet, err := tun.NewNetstack([]netip.Addr{n.addr}, 0)
	if err != nil {
		t.Fatal(err)
	}
	n.net = tnet
	if cfg.Errorf == nil {
		cfg.Errorf = t.Logf
	}
	d, err := device.New(tdev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.IpcSet(uapiCfg("private_key", n.key.privHex(), "listen_port", "0")); err != nil {
		t.Fatal(err)
	}
	if err := d.Up(); err != nil {
		t.Fatal(err)
	}
	n.port = waitPort(t, d.Bind().Port)
	return n, d
}

// newUpstreamNode starts a plain upstream device on netstack.
func newUpstreamNode(t testing.TB, addr string) (*node, *wgdevice.Device) {
	t.Helper()
	return newUpstreamNodeOn(t, addr, wgconn.NewDefaultBind())
}

// newUpstreamNodeOn starts a plain upstream device on netstack over bind.
func newUpstreamNodeOn(t testing.TB, addr string, bind wgconn.Bind) (*node, *wgdevice.Device) {
	t.Helper()
	n := &node{key: newKeypair(t), addr: netip.MustParseAddr(addr)}
	tdev, tnet, err := tun.NewNetstack([]netip.Addr{n.addr}, 0) // upstream netstack, closed only once no Write is inside it
	if err != nil {
		t.Fatal(err)
	}
	n.net = tnet
	d := wgdevice.NewDevice(tdev, bind, wgdevice.NewLogger(wgdevice.LogLevelError, "upstream "))
	t.Cleanup(d.Close)
	if err := d.IpcSet(uapiCfg("private_key", n.key.privHex(), "listen_port", "0")); err != nil {
		t.Fatal(err)
	}
	if err := d.Up(); err != nil {
		t.Fatal(err)
	}
	n.port = listenPortOf(t, d)
	return n, d
}

func waitPort(t testing.TB, port func() uint16) uint16 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if p := port(); p != 0 {
			return p
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("device never opened its UDP port")
	return 0
}

type ipcGetter interface{ IpcGet() (string, error) }

func listenPortOf(t testing.TB, d ipcGetter) uint16 {
	t.Helper()
	get, err := d.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(get, "\n") {
		if v, ok := strings.CutPrefix(l, "listen_port="); ok {
			var p uint16
			fmt.Sscan(v, &p)
			return p
		}
	}
	t.Fatal("no listen_port in get reply")
	return 0
}

type ipcSetter interface{ IpcSet(string) error }

// peerWith adds b as a peer of a; withEndpoint gives a b's loopback
// address.
func peerWith(t testing.TB, a ipcSetter, b *node, withEndpoint bool) {
	t.Helper()
	kv := []string{"public_key", b.key.pubHex(), "allowed_ip", netip.PrefixFrom(b.addr, b.addr.BitLen()).String()}
	if withEndpoint {
		kv = append(kv, "endpoint", fmt.Sprintf("127.0.0.1:%d", b.port))
	}
	if err := a.IpcSet(uapiCfg(kv...)); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if cond() {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

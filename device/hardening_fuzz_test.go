package device

// Fuzz targets over a whole Device (hardening): the UAPI set path with
// every extension key, the just-in-time install lines built from a
// provider's answer, and the features' packet hooks. The device is built
// on a TUN that never comes up, so nothing it is told reaches a network.

import (
	"context"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/jit"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/httpprovider"
	"github.com/wghooks/wghooks/uapi"
)

// fuzzTUN is a TUN that never comes up and never carries a packet.
type fuzzTUN struct {
	events chan wgtun.Event
	closed chan struct{}
}

func newFuzzTUN() *fuzzTUN {
	return &fuzzTUN{events: make(chan wgtun.Event), closed: make(chan struct{})}
}

func (t *fuzzTUN) File() *os.File { return nil }
func (t *fuzzTUN) Read([][]byte, []int, int) (int, error) {
	<-t.closed
	return 0, os.ErrClosed
}
func (t *fuzzTUN) Write(bufs [][]byte, _ int) (int, error) { return len(bufs), nil }
func (t *fuzzTUN) MTU() (int, error)                       { return 1420, nil }
func (t *fuzzTUN) Name() (string, error)                   { return "fuzz0", nil }
func (t *fuzzTUN) Events() <-chan wgtun.Event              { return t.events }
func (t *fuzzTUN) BatchSize() int                          { return 1 }
func (t *fuzzTUN) Close() error {
	select {
	case <-t.closed:
	default:
		close(t.closed)
		close(t.events)
	}
	return nil
}

// fuzzDevice is a device that stays down, with just-in-time peers on (a
// provider that knows no one), a resolver that answers loopback only, and
// a private key.
func fuzzDevice(tb testing.TB) (*Device, [32]byte) {
	tb.Helper()
	d, err := New(newFuzzTUN(), Config{
		JIT: JITConfig{Provider: hooks.ProviderFunc(func(context.Context, hooks.PublicKey) (hooks.PeerConfig, error) {
			return hooks.PeerConfig{}, hooks.ErrUnknownPeer
		})},
		Endpoints: EndpointConfig{
			Resolver: hooks.ResolverFunc(func(context.Context, string) (hooks.Answer, error) {
				return hooks.Answer{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, TTL: time.Minute}, nil
			}),
			NoRouteWatch: true,
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	priv, _ := stateTestKey(1)
	if err := d.IpcSet("private_key=" + hex.EncodeToString(priv[:]) + "\n"); err != nil {
		tb.Fatal(err)
	}
	return d, priv
}

// fuzzReset puts the device back to its key and no peers, after a
// transaction that may have changed anything.
func fuzzReset(tb testing.TB, d *Device, priv [32]byte) {
	tb.Helper()
	if err := d.IpcSet("private_key=" + hex.EncodeToString(priv[:]) + "\nlisten_port=0\nfwmark=0\nreplace_peers=true\n"); err != nil {
		tb.Fatalf("failed to reset the device: %v", err)
	}
}

// FuzzSetTransaction feeds a whole set transaction, extension keys
// included, to a device. A transaction that fails answers an errno and
// leaves the device as it was (the transaction is validated whole before
// any of it applies); one that succeeds leaves a get reply that parses.
func FuzzSetTransaction(f *testing.F) {
	const keyB = "b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33"
	for _, s := range []string{
		"listen_port=51820\nfwmark=7\n",
		"public_key=" + keyB + "\nendpoint=127.0.0.1:9\nallowed_ip=198.18.0.0/15\npersistent_keepalive_interval=25\nwghooks_jit=true\n",
		"public_key=" + keyB + "\nwghooks_endpoint=vpn.example.com:51820\n",
		"public_key=" + keyB + "\nwghooks_endpoint=\n",
		"public_key=" + keyB + "\nwghooks_reset_source=true\n",
		"drain=true\n",
		"drain=false\n",
		"wghooks_broadcast=true\n",
		"wghooks_save_state=true\n",
		"wghooks_reset_source=true\n",
		"wghooks_flow_escape=false\n",
		"wghooks_jit_forget=" + keyB + "\n",
		"public_key=" + keyB + "\nremove=true\n",
		"replace_peers=true\npublic_key=" + keyB + "\nupdate_only=true\nallowed_ip=fd00::/8\n",
		"public_key=" + keyB + "\nendpoint=host.example:1\n",
		"public_key=" + keyB + "\nallowed_ip=198.18.0.1/32\nwghooks_jit=maybe\n",
		"private_key=0000000000000000000000000000000000000000000000000000000000000000\n",
	} {
		f.Add(s)
	}
	d, priv := fuzzDevice(f)
	f.Fuzz(func(t *testing.T, text string) {
		before, err := d.IpcGet()
		if err != nil {
			t.Fatal(err)
		}
		err = d.IpcSet(text)
		after, gerr := d.IpcGet()
		if gerr != nil {
			t.Fatal(gerr)
		}
		if err != nil {
			var coded uapi.Coded
			if !errors.As(err, &coded) || coded.ErrorCode() >= 0 {
				t.Fatalf("error without a negative errno: %v", err)
			}
			if after != before {
				t.Fatalf("failed transaction %q (%v) changed the device:\nbefore:\n%s\nafter:\n%s", text, err, before, after)
			}
		}
		for _, l := range strings.Split(strings.TrimSuffix(after, "\n"), "\n") {
			if k, v, ok := strings.Cut(l, "="); !ok || k == "" || strings.Contains(v, "=") {
				t.Fatalf("get reply line %q is not key=value", l)
			}
		}
		fuzzReset(t, d, priv)
	})
}

// FuzzInstallLines: whatever an HTTP control plane answers that passes
// the provider's decoding and validation installs cleanly (the device
// never half-installs a peer because upstream refused a line the
// validation let through), exactly as answered.
func FuzzInstallLines(f *testing.F) {
	f.Add("198.18.0.2/32,fd00::2/128", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", 25, "198.18.1.1:51820")
	f.Add("", "", 0, "")
	f.Add("198.18.0.7/24,::ffff:198.18.0.1/128", "", 65535, "[fe80::1%eth0]:51820")
	f.Add("0.0.0.0/0,::/0", "", 1, "[::ffff:198.18.0.1]:1")
	d, priv := fuzzDevice(f)
	_, pub := stateTestKey(9)
	key := hooks.PublicKey(pub)
	f.Fuzz(func(t *testing.T, ips, psk string, keepalive int, endpoint string) {
		jp := httpprovider.Peer{PresharedKey: psk, PersistentKeepalive: keepalive, Endpoint: endpoint}
		if ips != "" {
			jp.AllowedIPs = strings.Split(ips, ",")
		}
		cfg, err := jp.Config()
		if err != nil || cfg.Validate(key) != nil {
			return
		}
		install := feature.Config{Peers: []feature.PeerConfig{jit.InstallConfig(pub, cfg)}}
		if err := (host{d}).Configure("jit", install); err != nil {
			t.Fatalf("valid answer %+v refused at install: %v", jp, err)
		}
		get, err := d.IpcGet()
		if err != nil {
			t.Fatal(err)
		}
		v := feature.ParseView(get)
		if len(v.Peers) != 1 || v.Peers[0].PublicKey != pub {
			t.Fatalf("install of %+v left peers %+v", jp, v.Peers)
		}
		for _, p := range cfg.AllowedIPs {
			if !strings.Contains(get, "allowed_ip="+p.Masked().String()+"\n") {
				t.Fatalf("allowed IP %v of %+v not installed:\n%s", p, jp, get)
			}
		}
		fuzzReset(t, d, priv)
	})
}

// FuzzPacketHooks shows any datagram, received and sent, to every
// feature's packet hooks, as the bind does: they run on the packet path
// and must never panic, whatever arrives.
func FuzzPacketHooks(f *testing.F) {
	d, _ := fuzzDevice(f)
	_, pub := stateTestKey(9)
	if err := d.IpcSet("public_key=" + hex.EncodeToString(pub[:]) + "\nendpoint=127.0.0.1:9\nallowed_ip=198.18.0.2/32\nwghooks_endpoint=peer.example:9\n"); err != nil {
		f.Fatal(err)
	}
	var own [32]byte
	if p, err := curve25519.X25519(mustPriv(f, d), curve25519.Basepoint); err == nil {
		copy(own[:], p)
	}
	for _, n := range []int{conn.MessageInitiationSize, conn.MessageResponseSize, conn.MessageCookieReplySize, conn.MessageTransportHeader, 32, 4, 1} {
		for _, typ := range []byte{1, 2, 3, 4, 9} {
			b := make([]byte, n)
			b[0] = typ
			f.Add(b)
		}
	}
	if msg, err := conn.SealInitiation([32]byte{1}, own, [32]byte{2}, 7, [12]byte{}); err == nil {
		f.Add(msg)
	}
	ep, err := d.bind.ParseEndpoint("127.0.0.1:9")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) >= 4 && pkt[0] < 8 {
			for _, ft := range d.features {
				if ft.ReceiveTypes()&(1<<pkt[0]) != 0 && ft.OnReceive(pkt, ep) == conn.Hold {
					break
				}
			}
		}
		for _, ft := range d.features {
			ft.OnSend([][]byte{pkt}, ep)
		}
	})
}

func mustPriv(tb testing.TB, d *Device) []byte {
	tb.Helper()
	get, err := d.IpcGet()
	if err != nil {
		tb.Fatal(err)
	}
	v := feature.ParseView(get)
	return v.PrivateKey[:]
}

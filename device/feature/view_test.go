package feature

import (
	"encoding/hex"
	"time"

	"golang.org/x/crypto/curve25519"
	"net/netip"
	"strings"
	"testing"
)

func TestViewByEndpoint(t *testing.T) {
	hex64 := func(c byte) string { return strings.Repeat(string(c), 64) }
	get := "private_key=" + hex64('a') + "\nlisten_port=1234\n" +
		"public_key=" + hex64('b') + "\nendpoint=127.0.0.1:51820\nallowed_ip=198.18.0.1/32\n" +
		"public_key=" + hex64('c') + "\nallowed_ip=198.18.0.2/32\n" +
		"public_key=" + hex64('d') + "\nendpoint=[fd00::1]:51820\n" +
		"public_key=" + hex64('e') + "\nendpoint=127.0.0.1:51820\n"
	v := ParseView(get)
	m := v.ByEndpoint()
	v4 := netip.MustParseAddrPort("127.0.0.1:51820")
	v6 := netip.MustParseAddrPort("[fd00::1]:51820")
	if len(m) != 2 || len(m[v4]) != 2 || len(m[v6]) != 1 {
		t.Fatalf("ByEndpoint = %v", m)
	}
	if m[v4][0][0] != 0xbb || m[v4][1][0] != 0xee || m[v6][0][0] != 0xdd {
		t.Fatalf("ByEndpoint keys = %v", m)
	}
	if _, ok := v.PublicKey(); !ok || len(v.ByPeer()) != 3 {
		t.Fatalf("PublicKey or ByPeer wrong: %v", v.ByPeer())
	}
}

// viewTestKey returns a private key made from b (already clamped) and its
// public key.
func viewTestKey(b byte) (priv [32]byte, pub Key) {
	priv = [32]byte{1: b, 31: 64}
	p, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
	return priv, Key(p)
}

func TestParseView(t *testing.T) {
	priv, own := viewTestKey(1)
	_, a := viewTestKey(2)
	_, b := viewTestKey(3)
	get := "private_key=" + hex.EncodeToString(priv[:]) + "\nlisten_port=51820\n" +
		"public_key=" + hex.EncodeToString(a[:]) + "\nendpoint=198.18.0.2:51821\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\ntx_bytes=10\nrx_bytes=20\nallowed_ip=198.19.0.2/32\n" +
		"public_key=" + hex.EncodeToString(b[:]) + "\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
	v := ParseView(get)
	if pub, ok := v.PublicKey(); !ok || pub != own {
		t.Errorf("public key = %x, %v; want %x", pub, ok, own)
	}
	if len(v.Peers) != 2 {
		t.Fatalf("%d peers, want 2", len(v.Peers))
	}
	if p := v.Peers[0]; p.PublicKey != a || p.Endpoint != "198.18.0.2:51821" || !p.Handshake.Equal(time.Unix(1700000000, 5)) || p.Tx != 10 || p.Rx != 20 {
		t.Errorf("peer a = %+v", p)
	}
	if p := v.Peers[1]; p.PublicKey != b || p.Endpoint != "" || !p.Handshake.IsZero() {
		t.Errorf("peer b = %+v", p)
	}
}

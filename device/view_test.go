package device

import (
	"encoding/hex"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	wgdevice "golang.zx2c4.com/wireguard/device"
)

// stateTestKey returns a private key made from b (already clamped) and
// its public key.
func stateTestKey(b byte) (priv [32]byte, pub wgdevice.NoisePublicKey) {
	priv = [32]byte{1: b, 31: 64}
	p, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
	return priv, wgdevice.NoisePublicKey(p)
}

func TestParseView(t *testing.T) {
	priv, own := stateTestKey(1)
	_, a := stateTestKey(2)
	_, b := stateTestKey(3)
	get := "private_key=" + hex.EncodeToString(priv[:]) + "\nlisten_port=51820\n" +
		"public_key=" + hex.EncodeToString(a[:]) + "\nendpoint=198.18.0.2:51821\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\ntx_bytes=10\nrx_bytes=20\nallowed_ip=198.19.0.2/32\n" +
		"public_key=" + hex.EncodeToString(b[:]) + "\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
	v := parseView(get)
	if pub, ok := v.publicKey(); !ok || pub != own {
		t.Errorf("public key = %x, %v; want %x", pub, ok, own)
	}
	if len(v.peers) != 2 {
		t.Fatalf("%d peers, want 2", len(v.peers))
	}
	if p := v.peers[0]; p.pk != a || p.endpoint != "198.18.0.2:51821" || !p.handshake.Equal(time.Unix(1700000000, 5)) || p.tx != 10 || p.rx != 20 {
		t.Errorf("peer a = %+v", p)
	}
	if p := v.peers[1]; p.pk != b || p.endpoint != "" || !p.handshake.IsZero() {
		t.Errorf("peer b = %+v", p)
	}
}

package device

import (
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

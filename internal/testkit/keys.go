package testkit

// Keys: WireGuard static key pairs and the UAPI text that configures them.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// Keypair is a WireGuard static key pair.
type Keypair struct {
	Priv, Pub [32]byte
}

// NewKeypair returns a fresh random key pair.
func NewKeypair() Keypair {
	var priv [32]byte
	rand.Read(priv[:]) // never fails (Go 1.24+: it crashes the program instead)
	return KeypairFrom(priv)
}

// KeypairFrom returns the key pair of private key priv, clamped.
func KeypairFrom(priv [32]byte) Keypair {
	k := Keypair{Priv: priv}
	k.Priv[0] &= 248
	k.Priv[31] = (k.Priv[31] & 127) | 64
	pub, err := curve25519.X25519(k.Priv[:], curve25519.Basepoint)
	if err != nil {
		panic(fmt.Sprintf("testkit: failed to derive a public key: %v", err)) // only for a low-order point, which a clamped scalar times the base point is not
	}
	copy(k.Pub[:], pub)
	return k
}

// IsZero reports whether k is the zero Keypair ("make one").
func (k Keypair) IsZero() bool { return k.Priv == [32]byte{} }

// PrivHex is the private key in hex, as UAPI writes it.
func (k Keypair) PrivHex() string { return hex.EncodeToString(k.Priv[:]) }

// PubHex is the public key in hex, as UAPI writes it.
func (k Keypair) PubHex() string { return hex.EncodeToString(k.Pub[:]) }

// UAPI joins key=value pairs into the lines of a set transaction (without
// "set=1" and the closing blank line, as IpcSet takes them).
func UAPI(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s=%s\n", kv[i], kv[i+1])
	}
	return b.String()
}

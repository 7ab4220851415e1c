package feature

import (
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/conn"
)

// Identity is the device's static identity as features need it on the
// receive path, before upstream sees a datagram: the initiation decoder
// (mac1, es and ss) for just-in-time peers, and a cookie checker of the
// guard's own (upstream's cookie secret is not exported).
type Identity struct {
	*conn.Identity
	Cookies wgdevice.CookieChecker
}

// NewIdentity derives the identity of private key priv.
func NewIdentity(priv [32]byte) (*Identity, error) {
	id, err := conn.NewIdentity(priv)
	if err != nil {
		return nil, err
	}
	ident := &Identity{Identity: id}
	ident.Cookies.Init(wgdevice.NoisePublicKey(id.PublicKey()))
	return ident, nil
}

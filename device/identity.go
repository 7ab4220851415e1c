package device

import (
	"encoding/hex"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"wghooks/conn"
	"wghooks/uapi"
)

// identity is the device's static identity as wghooks needs it on the
// receive path, before upstream sees a datagram: the initiation decoder
// (mac1, es, ss) for just-in-time peers, and a cookie checker of the
// guard's own. It is rebuilt whenever a set transaction carries a private
// key; nil while the device has none.
type identity struct {
	*conn.Identity
	cookies wgdevice.CookieChecker
}

// noteIdentity follows a set transaction's private_key line.
func (d *Device) noteIdentity(set *uapi.Set) {
	for _, l := range set.Device {
		if l.Key == "private_key" {
			d.setIdentity(l.Value)
		}
	}
}

func (d *Device) setIdentity(hexKey string) {
	var priv [32]byte
	b, err := hex.DecodeString(hexKey)
	if err != nil || len(b) != 32 {
		return // upstream refused it too
	}
	copy(priv[:], b)
	// Sources known under the old key say nothing about the new one.
	defer d.sources.purge(nil)
	if priv == ([32]byte{}) {
		d.identity.Store(nil)
		return
	}
	id, err := conn.NewIdentity(priv)
	if err != nil {
		d.log.Errorf("failed to derive the device identity: %v", err)
		d.identity.Store(nil)
		return
	}
	ident := &identity{Identity: id}
	ident.cookies.Init(wgdevice.NoisePublicKey(id.PublicKey()))
	d.identity.Store(ident)
}

package device

import (
	"encoding/hex"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/uapi"
)

// noteIdentity follows a set transaction's private_key line: the
// identity features read on the receive path (feature.Identity) is
// rebuilt whenever a transaction carries a private key; nil while the
// device has none.
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
	defer d.sources.Purge(nil)
	if priv == ([32]byte{}) {
		d.identity.Store(nil)
		return
	}
	id, err := feature.NewIdentity(priv)
	if err != nil {
		d.log.Errorf("failed to derive the device identity: %v", err)
		d.identity.Store(nil)
		return
	}
	d.identity.Store(id)
}

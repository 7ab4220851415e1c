package device

import (
	wgdevice "golang.zx2c4.com/wireguard/device"

	"wghooks/uapi"
)

// This file is the one list of wghooks' UAPI extension keys. Each feature
// implements its keys in its own file; they are wired here so the whole
// protocol surface can be read in one place. Extension keys are prefixed
// "wghooks_" except where a feature's name is the documented interface
// (drain=true). Values never contain '=', which wgctrl would reject.

// deviceKey is a device-level extension key.
type deviceKey struct {
	validate func(value string) error // nil accepts any value
	apply    func(d *Device, value string) error
}

// peerKey is a peer-level extension key, applied to the peer named by the
// preceding public_key line.
type peerKey struct {
	validate func(value string) error
	apply    func(d *Device, pk wgdevice.NoisePublicKey, value string) error
}

var (
	deviceKeys = map[string]deviceKey{}
	peerKeys   = map[string]peerKey{}
)

// extensionKeys describes the keys to the parser.
func extensionKeys() *uapi.Extensions {
	ext := &uapi.Extensions{
		Device: make(map[string]func(string) error, len(deviceKeys)),
		Peer:   make(map[string]func(string) error, len(peerKeys)),
	}
	for k, v := range deviceKeys {
		ext.Device[k] = v.validate
	}
	for k, v := range peerKeys {
		ext.Peer[k] = v.validate
	}
	return ext
}

// applyExtensions runs a transaction's extension keys after upstream has
// applied its standard keys.
func (d *Device) applyExtensions(set *uapi.Set) error {
	for _, l := range set.DeviceExt {
		if err := deviceKeys[l.Key].apply(d, l.Value); err != nil {
			return err
		}
	}
	for _, p := range set.Peers {
		for _, l := range p.Ext {
			if err := peerKeys[l.Key].apply(d, p.PublicKey, l.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// deviceGetLines returns the device-level extension lines of a get reply.
func (d *Device) deviceGetLines() []uapi.Line { return nil }

// hasPeerGetLines reports whether any feature adds per-peer get lines.
func (d *Device) hasPeerGetLines() bool { return false }

// peerGetLines returns one peer's extension lines of a get reply.
func (d *Device) peerGetLines(pk wgdevice.NoisePublicKey) []uapi.Line { return nil }

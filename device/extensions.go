package device

import (
	"sort"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"wghooks/uapi"
)

// wghooks' UAPI extension keys. Each feature registers its keys from an
// init function in its own file (drain.go registers "drain", ...); `wghooks
// keys` and ExtensionKeys list them all. Extension keys are prefixed
// "wghooks_" except where the issue names the key (drain=true). Values
// never contain '=', which wgctrl would reject in a get reply.

// deviceKey is a device-level extension key in a set transaction.
type deviceKey struct {
	doc      string
	validate func(value string) error // nil accepts any value
	apply    func(d *Device, value string) error
}

// peerKey is a peer-level extension key, applied to the peer named by the
// preceding public_key line, after upstream has applied the standard keys.
type peerKey struct {
	doc      string
	validate func(value string) error
	apply    func(d *Device, pk wgdevice.NoisePublicKey, value string) error
}

var (
	deviceKeys = map[string]deviceKey{}
	peerKeys   = map[string]peerKey{}

	// deviceGetters add device-level lines to a get reply.
	deviceGetters []func(d *Device) []uapi.Line
	// peerGetters add lines to one peer's section of a get reply.
	peerGetters []func(d *Device, pk wgdevice.NoisePublicKey) []uapi.Line
)

// ExtensionKeys returns "scope key: doc" for every extension key, sorted.
func ExtensionKeys() []string {
	var out []string
	for k, v := range deviceKeys {
		out = append(out, "device "+k+": "+v.doc)
	}
	for k, v := range peerKeys {
		out = append(out, "peer "+k+": "+v.doc)
	}
	sort.Strings(out)
	return out
}

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

func (d *Device) deviceGetLines() []uapi.Line {
	var out []uapi.Line
	for _, g := range deviceGetters {
		out = append(out, g(d)...)
	}
	return out
}

func (d *Device) hasPeerGetLines() bool { return len(peerGetters) > 0 }

func (d *Device) peerGetLines(pk wgdevice.NoisePublicKey) []uapi.Line {
	var out []uapi.Line
	for _, g := range peerGetters {
		out = append(out, g(d, pk)...)
	}
	return out
}

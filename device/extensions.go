package device

import (
	"sort"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/uapi"
)

// wghooks' UAPI extension keys. Each feature declares its own (Keys);
// the core collects them once, at New, into the parser's table and the
// apply table. Extension keys are prefixed "wghooks_" except where the
// issue names the key (drain=true). Values never contain '=', which
// wgctrl would reject in a get reply.

// extensionKeys is the device's table of extension keys.
type extensionKeys struct {
	device, peer map[string]feature.ExtKey
	parser       *uapi.Extensions
}

func newExtensionKeys(features []feature.Feature) (extensionKeys, error) {
	k := extensionKeys{
		device: make(map[string]feature.ExtKey),
		peer:   make(map[string]feature.ExtKey),
		parser: &uapi.Extensions{Device: map[string]func(string) error{}, Peer: map[string]func(string) error{}},
	}
	for _, f := range features {
		for _, x := range f.Keys() {
			table, parser := k.device, k.parser.Device
			if x.Peer {
				table, parser = k.peer, k.parser.Peer
			}
			if _, dup := table[x.Name]; dup {
				return k, errDuplicateKey(x.Name)
			}
			table[x.Name] = x
			parser[x.Name] = x.Validate
		}
	}
	return k, nil
}

type errDuplicateKey string

func (e errDuplicateKey) Error() string {
	return "failed to register extension key " + string(e) + ": declared twice"
}

// ExtensionKeys returns "scope key: doc" for every extension key, sorted.
func ExtensionKeys() []string {
	var out []string
	for _, f := range declaredFeatures() {
		for _, x := range f.Keys() {
			scope := "device "
			if x.Peer {
				scope = "peer "
			}
			out = append(out, scope+x.Name+": "+x.Doc)
		}
	}
	sort.Strings(out)
	return out
}

// applyExtensions runs a transaction's extension keys after upstream has
// applied its standard keys.
func (d *Device) applyExtensions(set *uapi.Set) error {
	for _, l := range set.DeviceExt {
		if err := d.keys.device[l.Key].ApplyDevice(l.Value); err != nil {
			return err
		}
	}
	for _, p := range set.Peers {
		for _, l := range p.Ext {
			if err := d.keys.peer[l.Key].ApplyPeer(p.PublicKey, l.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Device) deviceGetLines() []uapi.Line {
	out := d.readinessLines()
	for _, f := range d.features {
		out = append(out, f.GetLines()...)
	}
	return out
}

func (d *Device) peerGetLines(pk feature.Key) []uapi.Line {
	var out []uapi.Line
	for _, f := range d.features {
		out = append(out, f.PeerGetLines(pk)...)
	}
	return out
}

package device

// Transitional: the features not yet moved to packages of their own run
// behind this adapter, and register their keys in the maps below. Each
// moves out in its own step; this file goes with the last.

import (
	"net/netip"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"

	"wghooks/conn"
	"wghooks/device/feature"
	"wghooks/device/guard"
	"wghooks/device/jit"
	"wghooks/device/restart"
	"wghooks/uapi"
)

type noiseKey = wgdevice.NoisePublicKey

var shortKey = feature.ShortKey

var normalizeEndpoint = feature.NormalizeEndpoint

func addrPortOf(ep wgconn.Endpoint) (netip.AddrPort, bool) { return feature.AddrPortOf(ep) }

// legacyFeature is the old in-package feature shape.
type legacyFeature interface {
	start(d *Device) error
	beforeUp()
	afterUp()
	close()
	receiveTypes() uint8
	onReceive(packet []byte, ep wgconn.Endpoint) conn.Verdict
	onSend(bufs [][]byte, ep wgconn.Endpoint)
}

type noFeature struct{}

func (noFeature) start(*Device) error                            { return nil }
func (noFeature) beforeUp()                                      {}
func (noFeature) afterUp()                                       {}
func (noFeature) close()                                         {}
func (noFeature) receiveTypes() uint8                            { return 0 }
func (noFeature) onReceive([]byte, wgconn.Endpoint) conn.Verdict { return conn.Pass }
func (noFeature) onSend([][]byte, wgconn.Endpoint)               {}

// legacyFeatures are the typed handles of the features, for the
// Device's own methods.
type legacyFeatures struct {
	guard      *guard.Guard
	restart    *restart.Restart
	endpoints  *endpoints
	jit        *jit.JIT
	flowEscape *flowEscape
}

// legacyAdapter runs an old-shape feature as a feature.Feature.
type legacyAdapter struct {
	name string
	f    legacyFeature
	// configured, if set, follows every transaction.
	configured func(c feature.Change)
}

func (a legacyAdapter) Name() string { return a.name }
func (a legacyAdapter) BeforeUp()    { a.f.beforeUp() }
func (a legacyAdapter) AfterUp()     { a.f.afterUp() }
func (a legacyAdapter) Close()       { a.f.close() }
func (a legacyAdapter) ReceiveTypes() uint8 {
	return a.f.receiveTypes()
}
func (a legacyAdapter) OnReceive(p []byte, ep wgconn.Endpoint) conn.Verdict {
	return a.f.onReceive(p, ep)
}
func (a legacyAdapter) OnSend(b [][]byte, ep wgconn.Endpoint) { a.f.onSend(b, ep) }
func (a legacyAdapter) Configured(c feature.Change) {
	if a.configured != nil {
		a.configured(c)
	}
}
func (a legacyAdapter) Keys() []feature.ExtKey               { return nil }
func (a legacyAdapter) GetLines() []uapi.Line                { return nil }
func (a legacyAdapter) PeerGetLines(feature.Key) []uapi.Line { return nil }

func (d *Device) buildLegacyFeatures() error {
	r, err := restart.New(host{d}, d.cfg.Restart, restart.Wiring{ProviderPeers: d.cfg.JIT.Provider != nil, Sections: d.stateSections})
	if err != nil {
		return err
	}
	d.restart = r
	d.features = append(d.features, r)
	d.endpoints = newEndpoints(d)
	d.flowEscape = newFlowEscape(d)
	if err := d.startLegacy(legacyAdapter{name: "endpoints", f: d.endpoints}); err != nil {
		return err
	}
	j, err := jit.New(host{d}, d.cfg.JIT)
	if err != nil {
		return err
	}
	d.jit = j
	d.features = append(d.features, j)
	if err := d.startLegacy(legacyAdapter{name: "flowescape", f: d.flowEscape}); err != nil {
		return err
	}
	d.features = append(d.features, legacyKeys{d: d})
	return nil
}

// startLegacy lists a and starts it.
func (d *Device) startLegacy(a legacyAdapter) error {
	d.features = append(d.features, a)
	return a.f.start(d)
}

func declaredLegacy() []feature.Feature { return []feature.Feature{legacyKeys{}} }

// legacyKeys serves the keys registered in the maps below.
type legacyKeys struct {
	feature.Base
	d *Device
}

func (legacyKeys) Name() string { return "legacy" }

func (l legacyKeys) Keys() []feature.ExtKey {
	var out []feature.ExtKey
	for name, k := range deviceKeys {
		k := k
		out = append(out, feature.ExtKey{Name: name, Doc: k.doc, Validate: k.validate,
			ApplyDevice: func(v string) error { return k.apply(l.d, v) }})
	}
	for name, k := range peerKeys {
		k := k
		out = append(out, feature.ExtKey{Name: name, Peer: true, Doc: k.doc, Validate: k.validate,
			ApplyPeer: func(pk feature.Key, v string) error { return k.apply(l.d, pk, v) }})
	}
	return out
}

func (l legacyKeys) GetLines() []uapi.Line {
	var out []uapi.Line
	for _, g := range deviceGetters {
		out = append(out, g(l.d)...)
	}
	return out
}

func (l legacyKeys) PeerGetLines(pk feature.Key) []uapi.Line {
	var out []uapi.Line
	for _, g := range peerGetters {
		out = append(out, g(l.d, pk)...)
	}
	return out
}

// deviceKey is a device-level extension key in a set transaction.
type deviceKey struct {
	doc      string
	validate func(value string) error // nil accepts any value
	apply    func(d *Device, value string) error
}

// peerKey is a peer-level extension key.
type peerKey struct {
	doc      string
	validate func(value string) error
	apply    func(d *Device, pk wgdevice.NoisePublicKey, value string) error
}

var (
	deviceKeys    = map[string]deviceKey{}
	peerKeys      = map[string]peerKey{}
	deviceGetters []func(d *Device) []uapi.Line
	peerGetters   []func(d *Device, pk wgdevice.NoisePublicKey) []uapi.Line
)

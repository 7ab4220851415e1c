package device

// JITConfig configures just-in-time peers (peer-miss provisioning,
// eviction, revalidation).
type JITConfig struct{}

// jit is the just-in-time provisioning feature.
type jit struct {
	noFeature
	d *Device
}

func newJIT(d *Device) *jit { return &jit{d: d} }

package device

// EndpointConfig configures endpoints that heal (hostname re-resolution,
// failover, source-address reset).
type EndpointConfig struct{}

// endpoints is the healing-endpoints feature.
type endpoints struct {
	noFeature
	d *Device
}

func newEndpoints(d *Device) *endpoints { return &endpoints{d: d} }

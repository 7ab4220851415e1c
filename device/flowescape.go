package device

// HAConfig configures behaviour behind UDP load balancers (flow escape).
type HAConfig struct{}

// flowEscape moves a peer's flow to a new source port when handshakes go
// unanswered, so a flow-hashing balancer picks another backend.
type flowEscape struct {
	noFeature
	d *Device
}

func newFlowEscape(d *Device) *flowEscape { return &flowEscape{d: d} }

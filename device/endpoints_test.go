package device

import (
	"strings"
	"testing"

	wgdevice "golang.zx2c4.com/wireguard/device"
)

// TestNewFailsOnBadEndpointHost: a hostname in EndpointConfig.Hosts that
// does not parse fails New cleanly (it used to panic in Close, on the
// half-built feature).
func TestNewFailsOnBadEndpointHost(t *testing.T) {
	d, err := New(newFuzzTUN(), Config{Endpoints: EndpointConfig{
		Hosts:        map[wgdevice.NoisePublicKey]string{{1}: "vpn.example.com"},
		NoRouteWatch: true,
	}})
	if err == nil || d != nil || !strings.Contains(err.Error(), "failed to configure endpoint of") {
		t.Fatalf("New = %v, %v; want an error about the endpoint", d, err)
	}
}

package device

import (
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device/endpoints"
)

// Endpoints that heal live in package endpoints; these are the Device's
// doors to them.

// EndpointStatus describes a hostname peer. See endpoints.Status.
type EndpointStatus = endpoints.Status

// SetEndpointHost gives the peer with public key pk a hostname endpoint
// ("host:port", or "[v6]:port" / "v4:port" for a fixed address kept as a
// candidate list of one). The name is resolved on the device's goroutine;
// SetEndpointHost returns at once. An empty hostport removes the hostname
// and leaves the endpoint in use as it is.
func (d *Device) SetEndpointHost(pk wgdevice.NoisePublicKey, hostport string) error {
	return d.endpoints.SetHost(pk, hostport)
}

// EndpointStatus returns the hostname endpoint state of the peer with
// public key pk; ok is false when it has no hostname endpoint.
func (d *Device) EndpointStatus(pk wgdevice.NoisePublicKey) (st EndpointStatus, ok bool) {
	return d.endpoints.Status(pk)
}

// ResetSource forgets the local source address cached for the peer with
// public key pk: its next datagram leaves from the address the routing
// table picks. No packet is lost.
func (d *Device) ResetSource(pk wgdevice.NoisePublicKey) error {
	return d.endpoints.ResetSource(pk)
}

// ResetSources forgets the cached source addresses of all peers.
func (d *Device) ResetSources() { d.endpoints.ResetSources() }

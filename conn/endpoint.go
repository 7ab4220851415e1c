package conn

import (
	wgconn "golang.zx2c4.com/wireguard/conn"
)

// Unwrapper is implemented by endpoints that wrap another endpoint. The Bind
// unwraps them before handing a datagram to the inner bind, which only
// accepts its own endpoint type.
type Unwrapper interface {
	Unwrap() wgconn.Endpoint
}

// unwrapEndpoint peels wrappers off ep until it reaches the inner bind's own
// endpoint.
func unwrapEndpoint(ep wgconn.Endpoint) wgconn.Endpoint {
	for {
		u, ok := ep.(Unwrapper)
		if !ok {
			return ep
		}
		ep = u.Unwrap()
	}
}

package conn

import (
	"net/netip"

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

// DstAddrPort returns ep's destination address and port, unwrapping
// wrappers; the zero AddrPort for an endpoint without one.
func DstAddrPort(ep wgconn.Endpoint) netip.AddrPort {
	switch e := unwrapEndpoint(ep).(type) {
	case nil:
		return netip.AddrPort{}
	case *wgconn.StdNetEndpoint:
		return e.AddrPort
	case interface{ DstAddrPort() netip.AddrPort }:
		return e.DstAddrPort()
	case interface {
		Addr() netip.Addr
		Port() uint16
	}:
		return netip.AddrPortFrom(e.Addr(), e.Port())
	default:
		ap, _ := netip.ParseAddrPort(e.DstToString())
		return ap
	}
}

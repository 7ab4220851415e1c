//go:build !linux

package floodgen

import (
	"errors"
	"net/netip"
)

type spoofConn struct{ floodConn }

func dialSpoofed(src, dst netip.AddrPort) (*spoofConn, error) {
	return nil, errors.New("spoofed floods need Linux raw sockets")
}

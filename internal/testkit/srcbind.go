package testkit

// SourceBind: a conn.Bind that sends and receives on one UDP socket bound
// to a given loopback address, so many in-process clients can each come
// from an address of their own (upstream's bind listens on all of them
// and sends from 127.0.0.1, which makes every client one source).

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	wgconn "golang.zx2c4.com/wireguard/conn"
)

// SourceBind is a minimal IPv4 bind on one address.
type SourceBind struct {
	src netip.Addr
	mu  sync.Mutex
	c   *net.UDPConn
}

var _ wgconn.Bind = (*SourceBind)(nil)

// NewSourceBind returns a bind whose socket is bound to src (a loopback
// address such as 127.3.0.7).
func NewSourceBind(src netip.Addr) *SourceBind { return &SourceBind{src: src} }

// Open binds src:port (0: any port).
func (b *SourceBind) Open(port uint16) ([]wgconn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		return nil, 0, wgconn.ErrBindAlreadyOpen
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.src, port)))
	if err != nil {
		return nil, 0, err
	}
	b.c = c
	recv := func(packets [][]byte, sizes []int, eps []wgconn.Endpoint) (int, error) {
		n, from, err := c.ReadFromUDPAddrPort(packets[0])
		if err != nil {
			return 0, err
		}
		sizes[0], eps[0] = n, &wgconn.StdNetEndpoint{AddrPort: from}
		return 1, nil
	}
	return []wgconn.ReceiveFunc{recv}, c.LocalAddr().(*net.UDPAddr).AddrPort().Port(), nil
}

// Close closes the socket; its receive function then returns an error
// matching net.ErrClosed.
func (b *SourceBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c == nil {
		return nil
	}
	err := b.c.Close()
	b.c = nil
	return err
}

// Send sends bufs to ep, one datagram each.
func (b *SourceBind) Send(bufs [][]byte, ep wgconn.Endpoint) error {
	b.mu.Lock()
	c := b.c
	b.mu.Unlock()
	if c == nil {
		return net.ErrClosed
	}
	dst, ok := ep.(*wgconn.StdNetEndpoint)
	if !ok {
		return errors.New("SourceBind: not an endpoint of its own")
	}
	for _, buf := range bufs {
		if _, err := c.WriteToUDPAddrPort(buf, dst.AddrPort); err != nil {
			return err
		}
	}
	return nil
}

// ParseEndpoint parses "addr:port".
func (b *SourceBind) ParseEndpoint(s string) (wgconn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return &wgconn.StdNetEndpoint{AddrPort: ap}, nil
}

// SetMark does nothing.
func (b *SourceBind) SetMark(uint32) error { return nil }

// BatchSize is 1.
func (b *SourceBind) BatchSize() int { return 1 }

package floodgen

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// spoofConn sends UDP datagrams from an address it does not own, through
// a raw IPv4 socket (IPPROTO_RAW: the header is ours). It needs
// CAP_NET_RAW. Answers go to the spoofed address, so Read only waits for
// Close.
type spoofConn struct {
	fd       int
	src, dst netip.AddrPort
	buf      []byte

	closeOnce sync.Once
	closed    chan struct{}
}

func dialSpoofed(src, dst netip.AddrPort) (*spoofConn, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("failed to open a raw socket to spoof %v (needs CAP_NET_RAW): %w", src, err)
	}
	return &spoofConn{fd: fd, src: src, dst: dst, buf: make([]byte, 0, 2048), closed: make(chan struct{})}, nil
}

const (
	ipv4HeaderLen = 20
	udpHeaderLen  = 8
)

// Write sends p as one UDP datagram from src to dst. The kernel fills in
// the IP checksum; the UDP checksum is left out (zero), as IPv4 allows.
func (c *spoofConn) Write(p []byte) (int, error) {
	total := ipv4HeaderLen + udpHeaderLen + len(p)
	if total > cap(c.buf) {
		return 0, fmt.Errorf("datagram of %d bytes too large to spoof", len(p))
	}
	b := c.buf[:total]
	clear(b[:ipv4HeaderLen+udpHeaderLen])
	b[0] = 0x45 // IPv4, 5 words of header
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	b[8] = 64 // TTL
	b[9] = syscall.IPPROTO_UDP
	src, dst := c.src.Addr().As4(), c.dst.Addr().As4()
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	u := b[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(u[0:], c.src.Port())
	binary.BigEndian.PutUint16(u[2:], c.dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(udpHeaderLen+len(p)))
	copy(u[udpHeaderLen:], p)
	if err := syscall.Sendto(c.fd, b, 0, &syscall.SockaddrInet4{Addr: dst}); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *spoofConn) Read([]byte) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}

func (c *spoofConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		err = syscall.Close(c.fd)
	})
	return err
}

//go:build linux

package conn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
	wgconn "golang.zx2c4.com/wireguard/conn"

	"github.com/wghooks/wghooks/internal/mono"
)

// StickyBind is wghooks' default bind on Linux: kernel UDP sockets, like
// upstream's StdNetBind (batched reads and writes, UDP GRO and GSO), plus
// source addresses that work: every received endpoint remembers the local
// address the datagram arrived on, and datagrams sent to it leave from
// that address (IP_PKTINFO / IPV6_PKTINFO). Upstream's own capture of that
// address is lost on its GRO receive path, so on kernels with UDP GRO its
// replies leave from whatever address the routing table picks, which on a
// multi-homed server is often not the one the client contacted.
//
// The cached source is dropped by ResetSource/ResetAllSources and, for
// remotes we initiated sessions with, by RoutesChanged; see sourceCache.
type StickyBind struct {
	mu  sync.Mutex
	v4  *stickyConn
	v6  *stickyConn
	src *sourceCache

	msgs sync.Pool
}

type stickyConn struct {
	c   *net.UDPConn
	pc  *ipv6.PacketConn // ipv4.PacketConn and ipv6.PacketConn batch the same Message type
	is6 bool
	gro bool
	gso atomic.Bool
}

var (
	_ wgconn.Bind               = (*StickyBind)(nil)
	_ wgconn.PeekLookAtSocketFd = (*StickyBind)(nil)
	_ SourceResetter            = (*StickyBind)(nil)
)

// NewStickyBind returns a closed StickyBind.
func NewStickyBind() *StickyBind {
	b := &StickyBind{src: newSourceCache(0)}
	b.msgs.New = func() any {
		m := make([]ipv6.Message, wgconn.IdealBatchSize)
		for i := range m {
			m[i].Buffers = make(net.Buffers, 1)
			m[i].OOB = make([]byte, 0, stickyOOBSize)
		}
		return &m
	}
	return b
}

// defaultInnerBind is what NewBind wraps when given none.
func defaultInnerBind() wgconn.Bind { return NewStickyBind() }

// Sizes of the control messages: a PKTINFO (the IPv6 one is larger) and
// a UDP_SEGMENT/UDP_GRO integer.
var stickyOOBSize = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(4)

// udpMaxSegments is the kernel's limit on datagrams in one GSO send or
// one GRO receive.
const udpMaxSegments = 64

// socketBuffer is the send and receive buffer asked for, as upstream does.
const socketBuffer = 7 << 20

// StickyEndpoint is a remote address plus the local address and interface
// a datagram from it arrived on.
type StickyEndpoint struct {
	dst     netip.AddrPort
	src     netip.Addr // zero when unknown or parsed from configuration
	ifindex int32
	born    int64 // mono.Now() when received
	cleared atomic.Bool
}

var _ wgconn.Endpoint = (*StickyEndpoint)(nil)

func (e *StickyEndpoint) ClearSrc()                   { e.cleared.Store(true) }
func (e *StickyEndpoint) SrcToString() string         { return e.SrcIP().String() }
func (e *StickyEndpoint) DstToString() string         { return e.dst.String() }
func (e *StickyEndpoint) DstIP() netip.Addr           { return e.dst.Addr() }
func (e *StickyEndpoint) DstAddrPort() netip.AddrPort { return e.dst }
func (e *StickyEndpoint) SrcIP() netip.Addr {
	if e.cleared.Load() {
		return netip.Addr{}
	}
	return e.src
}
func (e *StickyEndpoint) DstToBytes() []byte {
	b, _ := e.dst.MarshalBinary()
	return b
}

// ParseEndpoint parses "ip:port". The endpoint has no source: datagrams
// to it leave from the address the routing table picks.
func (b *StickyBind) ParseEndpoint(s string) (wgconn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return &StickyEndpoint{dst: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// Open opens an IPv4 and an IPv6 socket on the same port (port 0: a
// random one both families have free).
func (b *StickyBind) Open(port uint16) ([]wgconn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.v4 != nil || b.v6 != nil {
		return nil, 0, wgconn.ErrBindAlreadyOpen
	}
	for tries := 0; ; tries++ {
		v4, actual, err := listenSticky("udp4", int(port))
		if err != nil && !errors.Is(err, syscall.EAFNOSUPPORT) {
			return nil, 0, err
		}
		v6, actual6, err := listenSticky("udp6", actual)
		if port == 0 && errors.Is(err, syscall.EADDRINUSE) && tries < 100 {
			if v4 != nil {
				v4.c.Close()
			}
			continue
		}
		if err != nil && !errors.Is(err, syscall.EAFNOSUPPORT) {
			if v4 != nil {
				v4.c.Close()
			}
			return nil, 0, err
		}
		if v4 == nil {
			actual = actual6
		}
		var fns []wgconn.ReceiveFunc
		if v4 != nil {
			b.v4 = v4
			fns = append(fns, b.receiveFunc(v4))
		}
		if v6 != nil {
			b.v6 = v6
			fns = append(fns, b.receiveFunc(v6))
		}
		if len(fns) == 0 {
			return nil, 0, syscall.EAFNOSUPPORT
		}
		return fns, uint16(actual), nil
	}
}

func listenSticky(network string, port int) (*stickyConn, int, error) {
	is6 := network == "udp6"
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			s := int(fd)
			unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer)
			unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUF, socketBuffer)
			unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer)
			unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer)
			if is6 {
				if serr = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); serr != nil {
					return
				}
				serr = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
			} else {
				serr = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			}
			// GRO is an optimisation: without it every datagram is read alone.
			unix.SetsockoptInt(s, unix.IPPROTO_UDP, unix.UDP_GRO, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, ":"+strconv.Itoa(port))
	if err != nil {
		return nil, 0, err
	}
	c := pc.(*net.UDPConn)
	sc := &stickyConn{c: c, pc: ipv6.NewPacketConn(c), is6: is6}
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO)
			sc.gro = err == nil && v == 1
			_, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
			sc.gso.Store(err == nil)
		})
	}
	return sc, c.LocalAddr().(*net.UDPAddr).Port, nil
}

// Close closes both sockets; the receive functions return net.ErrClosed.
func (b *StickyBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	if b.v4 != nil {
		errs = append(errs, b.v4.c.Close())
		b.v4 = nil
	}
	if b.v6 != nil {
		errs = append(errs, b.v6.c.Close())
		b.v6 = nil
	}
	return errors.Join(errs...)
}

func (b *StickyBind) getMsgs() *[]ipv6.Message  { return b.msgs.Get().(*[]ipv6.Message) }
func (b *StickyBind) putMsgs(m *[]ipv6.Message) { b.msgs.Put(m) }

// receiveFunc reads a batch. With GRO the kernel may coalesce up to 64
// datagrams of one flow into one read, so reads go into the last
// len(bufs)/64 buffers and are split forward into the batch; a split
// never overtakes a read it has not split yet.
func (b *StickyBind) receiveFunc(sc *stickyConn) wgconn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []wgconn.Endpoint) (int, error) {
		msgs := b.getMsgs()
		defer b.putMsgs(msgs)
		slots := len(bufs)
		first := 0
		if sc.gro {
			slots = max(1, len(bufs)/udpMaxSegments)
			first = len(bufs) - slots
		}
		ms := (*msgs)[:slots]
		for i := range ms {
			ms[i].Buffers[0] = bufs[first+i]
			ms[i].OOB = ms[i].OOB[:cap(ms[i].OOB)]
			ms[i].N, ms[i].NN, ms[i].Addr = 0, 0, nil
		}
		n, err := sc.pc.ReadBatch(ms, 0)
		if err != nil {
			return 0, err
		}
		out := 0
		born := mono.Now()
		for i := 0; i < n; i++ {
			m := &ms[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			local, ifindex, seg := parseStickyOOB(m.OOB[:m.NN])
			ep := &StickyEndpoint{dst: netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port()), src: local, ifindex: ifindex, born: born}
			data := m.Buffers[0][:m.N]
			if seg <= 0 || seg >= len(data) {
				seg = len(data)
			}
			for off := 0; off < len(data) || (off == 0 && len(data) == 0); off += seg {
				if out == len(bufs) {
					break // more segments than the batch holds: drop the rest
				}
				end := min(off+seg, len(data))
				sizes[out] = copy(bufs[out], data[off:end])
				eps[out] = ep
				out++
				if len(data) == 0 {
					break
				}
			}
		}
		return out, nil
	}
}

// parseStickyOOB reads the local address, interface and GRO segment size
// from a datagram's control messages.
func parseStickyOOB(oob []byte) (local netip.Addr, ifindex int32, seg int) {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return
		}
		oob = rest
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			info := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			local = netip.AddrFrom4(info.Spec_dst)
			ifindex = info.Ifindex
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			info := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			local = netip.AddrFrom16(info.Addr)
			ifindex = int32(info.Ifindex)
		case h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && len(data) >= 4:
			seg = int(*(*int32)(unsafe.Pointer(&data[0])))
		}
	}
	return
}

// appendPktinfo adds a control message choosing src as the source address.
// The interface is left to the routing table, except for IPv6 link-local
// sources, which need theirs.
func appendPktinfo(oob []byte, src netip.Addr, ifindex int32) []byte {
	if src.Is4() {
		oob = appendCmsg(oob, unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo)
		info := (*unix.Inet4Pktinfo)(unsafe.Pointer(&oob[len(oob)-unix.CmsgSpace(unix.SizeofInet4Pktinfo)+unix.CmsgLen(0)]))
		info.Spec_dst = src.As4()
		return oob
	}
	oob = appendCmsg(oob, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo)
	info := (*unix.Inet6Pktinfo)(unsafe.Pointer(&oob[len(oob)-unix.CmsgSpace(unix.SizeofInet6Pktinfo)+unix.CmsgLen(0)]))
	info.Addr = src.As16()
	if src.IsLinkLocalUnicast() {
		info.Ifindex = uint32(ifindex)
	}
	return oob
}

// appendGSO adds a UDP_SEGMENT control message.
func appendGSO(oob []byte, size uint16) []byte {
	oob = appendCmsg(oob, unix.IPPROTO_UDP, unix.UDP_SEGMENT, 2)
	*(*uint16)(unsafe.Pointer(&oob[len(oob)-unix.CmsgSpace(2)+unix.CmsgLen(0)])) = size
	return oob
}

// appendCmsg appends a zeroed control message with room for n data bytes.
func appendCmsg(oob []byte, level, typ int32, n int) []byte {
	start := len(oob)
	space := unix.CmsgSpace(n)
	for i := 0; i < space; i++ {
		oob = append(oob, 0)
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[start]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(n))
	return oob
}

// Send sends bufs to ep, from the cached source when there is one.
func (b *StickyBind) Send(bufs [][]byte, ep wgconn.Endpoint) error {
	se, ok := ep.(*StickyEndpoint)
	if !ok {
		return fmt.Errorf("failed to send: endpoint %T is not a StickyEndpoint", ep)
	}
	dst := se.dst
	b.mu.Lock()
	sc := b.v4
	if dst.Addr().Is6() {
		sc = b.v6
	}
	b.mu.Unlock()
	if sc == nil {
		return syscall.EAFNOSUPPORT
	}
	if len(bufs) == 1 && len(bufs[0]) > 0 {
		switch bufs[0][0] {
		case MessageInitiation:
			b.src.noteRole(dst, true)
		case MessageResponse:
			b.src.noteRole(dst, false)
		}
	}
	src := se.src
	if src.IsValid() && (se.cleared.Load() || !b.src.usable(se.born, dst)) {
		src = netip.Addr{}
	}
	err := b.send(sc, bufs, dst, src, se.ifindex)
	if err != nil && src.IsValid() {
		// The address may be gone (link down, address removed): forget
		// it for this remote and let the routing table choose.
		b.src.ResetSource(dst)
		err = b.send(sc, bufs, dst, netip.Addr{}, 0)
	}
	return err
}

func (b *StickyBind) send(sc *stickyConn, bufs [][]byte, dst netip.AddrPort, src netip.Addr, ifindex int32) error {
	ua := net.UDPAddrFromAddrPort(dst)
	msgs := b.getMsgs()
	defer b.putMsgs(msgs)
	gso := sc.gso.Load() && len(bufs) > 1
	n := b.fill(*msgs, bufs, ua, src, ifindex, gso)
	err := writeAll(sc.pc, (*msgs)[:n])
	if err != nil && gso && errors.Is(err, unix.EIO) {
		// Some drivers refuse segmentation offload: stop using it here.
		sc.gso.Store(false)
		n = b.fill(*msgs, bufs, ua, src, ifindex, false)
		err = writeAll(sc.pc, (*msgs)[:n])
	}
	return err
}

// fill builds the messages for bufs; with gso, runs of equal-sized
// datagrams (the last may be shorter) share one message.
func (b *StickyBind) fill(msgs []ipv6.Message, bufs [][]byte, ua *net.UDPAddr, src netip.Addr, ifindex int32, gso bool) int {
	n := 0
	for i := 0; i < len(bufs); {
		m := &msgs[n]
		m.Addr = ua
		m.OOB = m.OOB[:0]
		if src.IsValid() {
			m.OOB = appendPktinfo(m.OOB, src, ifindex)
		}
		seg := len(bufs[i])
		j := i + 1
		if gso {
			total := seg
			for j < len(bufs) && j-i < udpMaxSegments && len(bufs[j]) <= seg && total+len(bufs[j]) <= 65000 &&
				cap(bufs[i])-len(bufs[i]) >= total-seg+len(bufs[j]) {
				total += len(bufs[j])
				last := len(bufs[j]) < seg
				j++
				if last {
					break
				}
			}
		}
		if j-i > 1 {
			buf := bufs[i]
			for k := i + 1; k < j; k++ {
				buf = append(buf, bufs[k]...)
			}
			m.Buffers[0] = buf
			m.OOB = appendGSO(m.OOB, uint16(seg))
		} else {
			m.Buffers[0] = bufs[i]
		}
		n++
		i = j
	}
	return n
}

func writeAll(pc *ipv6.PacketConn, msgs []ipv6.Message) error {
	for len(msgs) > 0 {
		n, err := pc.WriteBatch(msgs, 0)
		if err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// SetMark sets SO_MARK on both sockets.
func (b *StickyBind) SetMark(mark uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sc := range []*stickyConn{b.v4, b.v6} {
		if sc == nil {
			continue
		}
		rc, err := sc.c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("failed to set fwmark %d: %w", mark, serr)
		}
	}
	return nil
}

// BatchSize is upstream's ideal batch.
func (b *StickyBind) BatchSize() int { return wgconn.IdealBatchSize }

func (b *StickyBind) peekFd(sc *stickyConn) (int, error) {
	if sc == nil {
		return -1, net.ErrClosed
	}
	rc, err := sc.c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	err = rc.Control(func(f uintptr) { fd = int(f) })
	return fd, err
}

// PeekLookAtSocketFd4 returns the IPv4 socket's descriptor.
func (b *StickyBind) PeekLookAtSocketFd4() (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peekFd(b.v4)
}

// PeekLookAtSocketFd6 returns the IPv6 socket's descriptor.
func (b *StickyBind) PeekLookAtSocketFd6() (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peekFd(b.v6)
}

// ResetSource forgets the source cached for remote.
func (b *StickyBind) ResetSource(remote netip.AddrPort) { b.src.ResetSource(remote) }

// ResetAllSources forgets every cached source.
func (b *StickyBind) ResetAllSources() { b.src.ResetAllSources() }

// RoutesChanged resets the sources of remotes we initiated to.
func (b *StickyBind) RoutesChanged() int { return b.src.RoutesChanged() }

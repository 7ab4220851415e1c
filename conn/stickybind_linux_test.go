//go:build linux

package conn

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"

	"github.com/wghooks/wghooks/internal/mono"
)

// stickyPeer is an open StickyBind and what it received.
type stickyPeer struct {
	b    *StickyBind
	port uint16
	mu   sync.Mutex
	got  [][]byte
	eps  []*StickyEndpoint
	wg   sync.WaitGroup
}

func openSticky(t *testing.T) *stickyPeer {
	t.Helper()
	b := NewStickyBind()
	fns, port, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	p := &stickyPeer{b: b, port: port}
	for _, fn := range fns {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			n := b.BatchSize()
			bufs := make([][]byte, n)
			for i := range bufs {
				bufs[i] = make([]byte, 65535)
			}
			sizes := make([]int, n)
			eps := make([]wgconn.Endpoint, n)
			for {
				k, err := fn(bufs, sizes, eps)
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						t.Errorf("receive: %v", err)
					}
					return
				}
				p.mu.Lock()
				for i := 0; i < k; i++ {
					p.got = append(p.got, append([]byte(nil), bufs[i][:sizes[i]]...))
					p.eps = append(p.eps, eps[i].(*StickyEndpoint))
				}
				p.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() {
		b.Close()
		p.wg.Wait()
	})
	return p
}

func (p *stickyPeer) wait(t *testing.T, n int) ([][]byte, []*StickyEndpoint) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		if len(p.got) >= n {
			got, eps := p.got, p.eps
			p.got, p.eps = nil, nil
			p.mu.Unlock()
			return got, eps
		}
		p.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("received %d datagrams, want %d", len(p.got), n)
	return nil, nil
}

func (p *stickyPeer) addr(a string) wgconn.Endpoint {
	ep, _ := p.b.ParseEndpoint(netip.AddrPortFrom(netip.MustParseAddr(a), p.port).String())
	return ep
}

// A reply leaves from the local address the request was sent to, on
// IPv4 and IPv6, until the source is reset; then the routing table picks.
func TestStickyRepliesFromContactedAddress(t *testing.T) {
	client, server := openSticky(t), openSticky(t)
	for _, tc := range []struct{ contacted, route string }{
		{"127.0.0.3", "127.0.0.1"},
		{"::1", "::1"},
	} {
		if err := client.b.Send([][]byte{[]byte{MessageInitiation, 0, 0, 0, 1}}, server.addr(tc.contacted)); err != nil {
			t.Fatal(err)
		}
		_, eps := server.wait(t, 1)
		if got := eps[0].SrcIP(); got != netip.MustParseAddr(tc.contacted) {
			t.Fatalf("server learned source %v, want the contacted %s", got, tc.contacted)
		}
		// The server replies to the endpoint it received.
		if err := server.b.Send([][]byte{[]byte("reply")}, eps[0]); err != nil {
			t.Fatal(err)
		}
		_, ceps := client.wait(t, 1)
		if got := ceps[0].DstAddrPort().Addr(); got != netip.MustParseAddr(tc.contacted) {
			t.Errorf("reply came from %v, want the contacted %s", got, tc.contacted)
		}
		// Reset: the same endpoint no longer pins the source.
		server.b.ResetSource(eps[0].DstAddrPort())
		if err := server.b.Send([][]byte{[]byte("after reset")}, eps[0]); err != nil {
			t.Fatal(err)
		}
		_, ceps = client.wait(t, 1)
		if got := ceps[0].DstAddrPort().Addr(); got != netip.MustParseAddr(tc.route) {
			t.Errorf("after reset the reply came from %v, want the route's %s", got, tc.route)
		}
	}
}

// Batches of equal datagrams (GSO on send, GRO on receive where the
// kernel coalesces) arrive whole, in order, with the right sizes.
func TestStickyBatches(t *testing.T) {
	a, b := openSticky(t), openSticky(t)
	for _, dst := range []string{"127.0.0.1", "::1"} {
		var bufs [][]byte
		for i := 0; i < 100; i++ {
			size := 1200
			if i == 99 {
				size = 300 // a shorter tail ends a GSO run
			}
			buf := make([]byte, size, 65535)
			for j := range buf {
				buf[j] = byte(i + j)
			}
			bufs = append(bufs, buf)
		}
		want := make([][]byte, len(bufs))
		for i := range bufs {
			want[i] = append([]byte(nil), bufs[i]...)
		}
		if err := a.b.Send(bufs, b.addr(dst)); err != nil {
			t.Fatal(err)
		}
		got, eps := b.wait(t, len(want))
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("to %s: datagram %d differs (len %d, want %d)", dst, i, len(got[i]), len(want[i]))
			}
			if eps[i].DstAddrPort().Port() != a.port {
				t.Fatalf("datagram %d from port %d, want %d", i, eps[i].DstAddrPort().Port(), a.port)
			}
		}
	}
}

// RoutesChanged resets the remotes we initiated to and keeps those that
// initiated to us.
func TestSourceCacheRoutesChanged(t *testing.T) {
	c := newSourceCache(time.Millisecond)
	server := netip.MustParseAddrPort("198.18.0.1:51820")
	client := netip.MustParseAddrPort("198.18.0.2:40000")
	born := mono.Now()
	c.noteRole(server, true)
	c.noteRole(client, false)
	time.Sleep(2 * time.Millisecond)
	if n := c.RoutesChanged(); n != 1 {
		t.Fatalf("RoutesChanged reset %d remotes, want 1", n)
	}
	if c.usable(born, server) {
		t.Error("source towards the server we initiated to survived a route change")
	}
	if !c.usable(born, client) {
		t.Error("source towards a client that initiated to us was reset")
	}
	time.Sleep(2 * time.Millisecond)
	if !c.usable(mono.Now(), server) {
		t.Error("a source learned after the grace period is not used")
	}
	c.ResetAllSources()
	if c.usable(born, client) {
		t.Error("ResetAllSources kept a source")
	}
}

// What upstream does on this kernel: its StdNetBind reads through UDP GRO,
// which drops the packet-info control message, so a reply leaves from the
// address the routing table picks, not from the one the peer contacted.
// This is why StickyBind exists; if upstream fixes it, this test says so.
func TestUpstreamStdNetBindRepliesFromRoute(t *testing.T) {
	client := openSticky(t)
	up := wgconn.NewStdNetBind()
	fns, port, err := up.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	server, _ := client.b.ParseEndpoint(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), port).String())
	if err := client.b.Send([][]byte{[]byte("hello")}, server); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{make([]byte, 65535)}
	for len(bufs) < up.BatchSize() {
		bufs = append(bufs, make([]byte, 65535))
	}
	sizes := make([]int, len(bufs))
	eps := make([]wgconn.Endpoint, len(bufs))
	if _, err := fns[0](bufs, sizes, eps); err != nil {
		t.Fatal(err)
	}
	t.Logf("upstream learned source %q for a datagram sent to 127.0.0.3", eps[0].SrcToString())
	if err := up.Send([][]byte{[]byte("reply")}, eps[0]); err != nil {
		t.Fatal(err)
	}
	_, ceps := client.wait(t, 1)
	from := ceps[0].DstAddrPort().Addr()
	t.Logf("upstream's reply came from %v", from)
	if from == netip.MustParseAddr("127.0.0.3") {
		t.Skip("upstream replied from the contacted address on this kernel (no UDP GRO?)")
	}
}

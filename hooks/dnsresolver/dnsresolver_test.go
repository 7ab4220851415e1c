package dnsresolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wghooks/wghooks/hooks/dnsresolver/dnstest"
)

// checkLeaks verifies, after every other cleanup, that no goroutine
// outlives the test.
func checkLeaks(t *testing.T) {
	opts := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opts) })
}

func startServer(t *testing.T) *dnstest.Server {
	t.Helper()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := udp.LocalAddr().(*net.UDPAddr).Port
	tcp, err := net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String())
	if err != nil {
		udp.Close()
		t.Skipf("cannot listen on TCP port %d too: %v", port, err)
	}
	s := dnstest.Serve(udp, tcp)
	t.Cleanup(s.Close)
	return s
}

func TestResolveAllRecordsWithTTL(t *testing.T) {
	checkLeaks(t)
	s := startServer(t)
	v4a, v4b, v6 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("fd00::1")
	s.Set("vpn.example.test", 42*time.Second, v4a, v6, v4b)
	r := &Resolver{Servers: []netip.AddrPort{s.Addr()}, NoFallback: true}
	ans, err := r.Resolve(context.Background(), "vpn.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if ans.TTL != 42*time.Second {
		t.Errorf("TTL = %v, want 42s", ans.TTL)
	}
	got := map[netip.Addr]bool{}
	for _, a := range ans.Addrs {
		got[a] = true
	}
	if len(ans.Addrs) != 3 || !got[v4a] || !got[v4b] || !got[v6] {
		t.Errorf("addrs = %v, want all three records", ans.Addrs)
	}
}

func TestResolveTruncatedFallsBackToTCP(t *testing.T) {
	checkLeaks(t)
	s := startServer(t)
	s.Truncate.Store(1)
	s.Set("many.example.test", time.Minute, netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"))
	r := &Resolver{Servers: []netip.AddrPort{s.Addr()}, NoFallback: true}
	ans, err := r.Resolve(context.Background(), "many.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(ans.Addrs) != 2 {
		t.Fatalf("addrs = %v, want both records (over TCP)", ans.Addrs)
	}
}

func TestResolveErrors(t *testing.T) {
	checkLeaks(t)
	s := startServer(t)
	r := &Resolver{Servers: []netip.AddrPort{s.Addr()}, NoFallback: true}
	if _, err := r.Resolve(context.Background(), "missing.example.test"); !errors.Is(err, errNameError) {
		t.Errorf("NXDOMAIN: err = %v", err)
	}

	// A server that never answers: the context's deadline ends the wait.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	r = &Resolver{Servers: []netip.AddrPort{silent.LocalAddr().(*net.UDPAddr).AddrPort()}, NoFallback: true}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := r.Resolve(ctx, "vpn.example.test"); err == nil {
		t.Fatal("silent server: no error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("silent server: took %v, want the context's deadline", d)
	}
}

func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "resolv.conf")
	os.WriteFile(p, []byte("# comment\nsearch example.test\nnameserver 198.18.0.53\nnameserver fd00::53\nnameserver bogus\noptions ndots:1\n"), 0o644)
	got, err := readResolvConf(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].String() != "198.18.0.53:53" || got[1].String() != "[fd00::53]:53" {
		t.Fatalf("servers = %v", got)
	}
	if _, err := readResolvConf(filepath.Join(dir, "none")); err == nil {
		t.Fatal("missing file: no error")
	}
}

func TestResolveLiteral(t *testing.T) {
	ans, err := (&Resolver{NoFallback: true}).Resolve(context.Background(), "fd00::7")
	if err != nil || len(ans.Addrs) != 1 || ans.Addrs[0] != netip.MustParseAddr("fd00::7") {
		t.Fatalf("literal = %v, %v", ans, err)
	}
}

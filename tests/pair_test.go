package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"

	"wghooks/device"
)

// ping sends one ICMP echo from a to b through the tunnel and waits for
// the reply.
func ping(t *testing.T, from *node, to netip.Addr, timeout time.Duration) error {
	t.Helper()
	c, err := from.net.DialPingAddr(netip.Addr{}, to)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	req := []byte{8, 0, 0, 0, 0, 1, 0, 1, 'w', 'g'}
	if _, err := c.Write(req); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	_, err = c.Read(buf)
	return err
}

// serveHTTP runs an HTTP server on n's tunnel address, port 80.
func serveHTTP(t *testing.T, n *node, body string) {
	t.Helper()
	ln, err := n.net.ListenTCPAddrPort(netip.AddrPortFrom(n.addr, 80))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// httpGet fetches http://to/ from n through the tunnel.
func httpGet(t *testing.T, n *node, to netip.Addr) (string, error) {
	t.Helper()
	client := &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return n.net.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(to, 80))
			},
			DisableKeepAlives: true,
		},
		Timeout: 10 * time.Second,
	}
	resp, err := client.Get(fmt.Sprintf("http://%s/", to))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

var _ = netstack.Net{}

func TestPairPingAndHTTP(t *testing.T) {
	checkLeaks(t)
	a, da := newWghooksNode(t, "198.18.0.1", device.Config{})
	b, db := newWghooksNode(t, "198.18.0.2", device.Config{})
	peerWith(t, da, b, true)
	peerWith(t, db, a, true)

	// An echo may be lost while netstack settles under -race; one answer
	// in ten tries proves the tunnel carries ICMP.
	var err error
	for i := 0; i < 10; i++ {
		if err = ping(t, a, b.addr, time.Second); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("ping a→b through the tunnel: %v", err)
	}
	serveHTTP(t, b, "hello through wghooks")
	got, err := httpGet(t, a, b.addr)
	if err != nil {
		t.Fatalf("HTTP a→b: %v", err)
	}
	if got != "hello through wghooks" {
		t.Fatalf("HTTP body = %q", got)
	}
	if !da.HasPeer(b.key.pub) || len(da.Peers()) != 1 {
		t.Fatalf("device's peer view = %v, want exactly b", da.Peers())
	}
}

func TestInteropWithUpstream(t *testing.T) {
	checkLeaks(t)
	ours, d := newWghooksNode(t, "198.18.1.1", device.Config{})
	theirs, u := newUpstreamNode(t, "198.18.1.2")
	peerWith(t, d, theirs, true)
	peerWith(t, u, ours, true)

	serveHTTP(t, theirs, "upstream says hi")
	got, err := httpGet(t, ours, theirs.addr)
	if err != nil || got != "upstream says hi" {
		t.Fatalf("wghooks→upstream HTTP = %q, %v", got, err)
	}
	serveHTTP(t, ours, "wghooks says hi")
	got, err = httpGet(t, theirs, ours.addr)
	if err != nil || got != "wghooks says hi" {
		t.Fatalf("upstream→wghooks HTTP = %q, %v", got, err)
	}
}

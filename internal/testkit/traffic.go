package testkit

// Traffic through a tunnel, sent from a node's netstack: one ICMP echo,
// UDP echoes, HTTP. Each proves the tunnel carries packets end to end.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// Ping sends one ICMP echo from n to to through the tunnel and waits up to
// timeout for the reply.
func (n *Node) Ping(to netip.Addr, timeout time.Duration) error {
	c, err := n.Net.DialPingAddr(netip.Addr{}, to)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{8, 0, 0, 0, 0, 1, 0, 1, 'w', 'g'}); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1500))
	return err
}

// PingUntil pings from n, each echo waiting up to every, until one is
// answered or timeout has passed, and returns how long that took.
func (n *Node) PingUntil(to netip.Addr, every, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < timeout {
		if err := n.Ping(to, every); err == nil {
			return time.Since(start), nil
		}
	}
	return 0, fmt.Errorf("no ping reply from %s within %v", to, timeout)
}

// EchoPort is the UDP port of ServeEcho.
const EchoPort = 7

// ServeEcho answers UDP datagrams on n's tunnel address, port EchoPort,
// until stop, which waits for the server's goroutine.
func (n *Node) ServeEcho() (stop func(), err error) {
	c, err := n.Net.ListenUDPAddrPort(netip.AddrPortFrom(n.Addr, EchoPort))
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			k, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:k], from)
		}
	}()
	return func() { c.Close(); <-done }, nil
}

// Echo sends one datagram from n through the tunnel to the echo server
// (ServeEcho) at to and waits up to timeout for it to come back intact.
func (n *Node) Echo(to netip.Addr, timeout time.Duration) error {
	c, err := n.Net.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(to, EchoPort))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	msg := []byte(fmt.Sprintf("echo %d", time.Now().UnixNano()))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	k, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:k]) != string(msg) {
		return fmt.Errorf("echo answered %q, want %q", buf[:k], msg)
	}
	return nil
}

// ServeHTTP serves body over HTTP on n's tunnel address, port 80, until
// stop.
func (n *Node) ServeHTTP(body string) (stop func(), err error) {
	ln, err := n.Net.ListenTCPAddrPort(netip.AddrPortFrom(n.Addr, 80))
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, body)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return func() { srv.Close(); <-done }, nil
}

// Get fetches http://to/ from n through the tunnel, within timeout.
func (n *Node) Get(to netip.Addr, timeout time.Duration) (string, error) {
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return n.Net.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(to, 80))
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Timeout: timeout, Transport: tr}).Get("http://" + to.String() + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New("HTTP " + resp.Status)
	}
	return string(b), err
}

// ServeEcho is n.ServeEcho, failing the test on error and stopping at
// Cleanup.
func ServeEcho(tb testing.TB, n *Node) {
	tb.Helper()
	stop, err := n.ServeEcho()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
}

// ServeHTTP is n.ServeHTTP, failing the test on error and stopping at
// Cleanup.
func ServeHTTP(tb testing.TB, n *Node, body string) {
	tb.Helper()
	stop, err := n.ServeHTTP(body)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
}

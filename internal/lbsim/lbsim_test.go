package lbsim

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// echo is a UDP backend that answers each datagram with its name.
func echo(t *testing.T, name string) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort([]byte(name), from)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func ask(t *testing.T, c *net.UDPConn) string {
	t.Helper()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func TestFlowsStickAndAvoidUnhealthyBackends(t *testing.T) {
	var bUp atomic.Bool
	bUp.Store(true)
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/b" && !bUp.Load() {
			w.WriteHeader(503)
		}
	}))
	defer health.Close()
	lb, err := Start(Config{
		Backends:             []Backend{{echo(t, "a"), health.URL + "/a"}, {echo(t, "b"), health.URL + "/b"}},
		HealthInterval:       20 * time.Millisecond,
		IdleTimeout:          time.Hour,
		UnhealthyIdleTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()

	// Many clients: each sticks to the backend its first datagram got,
	// and both backends get some.
	seen := map[string]int{}
	var onB *net.UDPConn
	for i := 0; i < 16; i++ {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(lb.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		first := ask(t, c)
		for j := 0; j < 3; j++ {
			if got := ask(t, c); got != first {
				t.Fatalf("client %d moved from %q to %q", i, first, got)
			}
		}
		seen[first]++
		if first == "b" && onB == nil {
			onB = c
		}
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Fatalf("backends used: %v, want both", seen)
	}

	// b turns unhealthy: its flows stay pinned while their clients send,
	// new flows go to a only, and a pinned flow expires once idle.
	bUp.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for lb.Healthy(1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if lb.Healthy(1) {
		t.Fatal("b never marked unhealthy")
	}
	if got := ask(t, onB); got != "b" {
		t.Fatalf("pinned flow answered by %q, want b", got)
	}
	for i := 0; i < 8; i++ {
		c, _ := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(lb.Addr()))
		defer c.Close()
		if got := ask(t, c); got != "a" {
			t.Fatalf("new flow %d went to %q while b is unhealthy", i, got)
		}
	}
	client := onB.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, ok := lb.FlowOf(client); ok && time.Now().Before(deadline.Add(5*time.Second)); _, ok = lb.FlowOf(client) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := ask(t, onB); got != "a" {
		t.Fatalf("after idling, flow answered by %q, want a new flow on a", got)
	}
	if _, err := Start(Config{}); err == nil {
		t.Fatal("balancer without backends started")
	}
}

package ipc_test

import (
	"bufio"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/ipc"
)

const (
	privA = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a"
	pubB  = "b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33"
)

// serve starts a device and a UAPI server on a socket in a temp dir.
func serve(t *testing.T) (*device.Device, string, string) {
	t.Helper()
	d := testkit.Device(t, "198.18.9.1", device.Config{Errorf: t.Logf})
	if err := d.IpcSet("private_key=" + privA + "\nlisten_port=0\n"); err != nil {
		t.Fatal(err)
	}
	// Up now, so the bind's port is settled before tests compare states.
	if err := d.Up(); err != nil {
		t.Fatal(err)
	}
	return d, testkit.ServeUAPI(t, d, "wgtest0", nil), "wgtest0"
}

func TestBadLineLeavesDeviceAsItWasAndConnectionSurvives(t *testing.T) {
	d, dir, iface := serve(t)
	before, _ := d.IpcGet()

	c, err := net.Dial("unix", ipc.SocketPath(dir, iface))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)

	// A valid peer, then a bad line: nothing of it may apply.
	reply := testkit.RoundTrip(t, c, r, "set=1\nlisten_port=51999\npublic_key="+pubB+"\nallowed_ip=198.18.9.2/32\nbogus_key=1\nallowed_ip=198.18.9.3/32\n\n")
	if reply != "errno=-22\n" {
		t.Fatalf("reply = %q, want errno=-22", reply)
	}
	after, _ := d.IpcGet()
	if after != before {
		t.Fatalf("device changed by a refused transaction:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if len(d.Peers()) != 0 {
		t.Fatalf("peer view changed: %v", d.Peers())
	}

	// Malformed line (no '='): protocol error, still one reply.
	if reply := testkit.RoundTrip(t, c, r, "set=1\nlisten_port\n\n"); reply != "errno=-71\n" {
		t.Fatalf("reply = %q, want errno=-71", reply)
	}
	// Unknown operation: an errno, not a dropped connection.
	if reply := testkit.RoundTrip(t, c, r, "frobnicate=1\n\n"); reply != "errno=-22\n" {
		t.Fatalf("reply = %q, want errno=-22", reply)
	}
	// Trailing character after get=1.
	if reply := testkit.RoundTrip(t, c, r, "get=1\nx\n\n"); reply != "errno=-22\n" {
		t.Fatalf("reply = %q, want errno=-22", reply)
	}

	// The same connection still works for a good transaction and a get.
	if reply := testkit.RoundTrip(t, c, r, "set=1\npublic_key="+pubB+"\nallowed_ip=198.18.9.2/32\n\n"); reply != "errno=0\n" {
		t.Fatalf("reply = %q, want errno=0", reply)
	}
	get := testkit.RoundTrip(t, c, r, "get=1\n\n")
	if !strings.Contains(get, "public_key="+pubB+"\n") || !strings.Contains(get, "allowed_ip=198.18.9.2/32\n") || !strings.HasSuffix(get, "errno=0\n") {
		t.Fatalf("get after good set:\n%s", get)
	}
	if len(d.Peers()) != 1 {
		t.Fatalf("peer view = %v, want one peer", d.Peers())
	}
}

func TestOversizedLineIsRefusedAndConsumed(t *testing.T) {
	_, dir, iface := serve(t)
	c, err := net.Dial("unix", ipc.SocketPath(dir, iface))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	huge := "set=1\npublic_key=" + pubB + "\nallowed_ip=" + strings.Repeat("9", 1<<20) + "\n\n"
	go c.Write([]byte(huge)) // the server reads while we write
	c.SetDeadline(time.Now().Add(10 * time.Second))
	reply, err := testkit.Reply(r)
	if err != nil {
		t.Fatal(err)
	}
	if reply != "errno=-71\n" {
		t.Fatalf("reply = %q, want errno=-71", reply)
	}
	if got := testkit.RoundTrip(t, c, r, "get=1\n\n"); !strings.HasSuffix(got, "errno=0\n") {
		t.Fatalf("get after oversized set: %q", got)
	}
}

func TestClientSetAndGet(t *testing.T) {
	d, dir, iface := serve(t)
	c, err := ipc.Dial(dir, iface)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set("public_key="+pubB, "allowed_ip=198.18.9.7/32"); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("listen_port=notaport"); err == nil {
		t.Fatal("bad listen_port accepted")
	}
	lines, err := c.Get()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range lines {
		if l.Key == "allowed_ip" && l.Value == "198.18.9.7/32" {
			found = true
		}
	}
	if !found || len(d.Peers()) != 1 {
		t.Fatalf("get = %v", lines)
	}
}

func TestSocketPermissions(t *testing.T) {
	_, dir, iface := serve(t)
	fi, err := os.Stat(ipc.SocketPath(dir, iface))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Fatalf("socket mode %v: others can connect", perm)
	}
}

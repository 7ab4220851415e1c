package testkit

// UAPI: a device with its UAPI served on a socket in the test's temporary
// directory, and raw protocol text spoken to it the way `nc -U` would.

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/ipc"
	"github.com/wghooks/wghooks/tun"
)

// Device starts a wghooks device on a netstack TUN with tunnel address
// addr; it is closed at cleanup.
func Device(t testing.TB, addr string, cfg device.Config) *device.Device {
	t.Helper()
	tdev, _, err := tun.NewNetstack([]netip.Addr{netip.MustParseAddr(addr)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := device.New(tdev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// ServeUAPI serves h on socket iface in a fresh temporary directory and
// returns the directory. configure, when non-nil, adjusts the server
// before it serves. The server logs to the test's log. At cleanup the
// server is closed and must have stopped cleanly.
func ServeUAPI(t testing.TB, h ipc.Handler, iface string, configure func(*ipc.Server)) (dir string) {
	t.Helper()
	return ServeUAPILog(t, h, iface, configure, t.Logf)
}

// ServeUAPILog is ServeUAPI with the server's log lines going to logf,
// for tests that check what the server logs.
func ServeUAPILog(t testing.TB, h ipc.Handler, iface string, configure func(*ipc.Server), logf hooks.Logf) (dir string) {
	t.Helper()
	dir = t.TempDir()
	ln, err := ipc.Listen(dir, iface)
	if err != nil {
		t.Fatal(err)
	}
	srv := ipc.NewServer(h, logf)
	if configure != nil {
		configure(srv)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	})
	return dir
}

// Reply reads one UAPI reply, up to and without its blank line.
func Reply(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		if line == "\n" {
			return b.String(), nil
		}
		b.WriteString(line)
	}
}

// RoundTrip writes raw text on c and returns the reply read from r,
// failing the test if none comes within 10 s.
func RoundTrip(t testing.TB, c net.Conn, r *bufio.Reader, text string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	reply, err := Reply(r)
	if err != nil {
		t.Fatalf("reading reply to %q: %v (so far %q)", text, err, reply)
	}
	return reply
}

// Raw dials the UAPI socket at path, sends text and returns the reply.
func Raw(t testing.TB, path, text string) string {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return RoundTrip(t, c, bufio.NewReader(c), text)
}

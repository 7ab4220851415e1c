package main

import (
	"errors"
	"net"
	"os"
	"testing"

	"github.com/wghooks/wghooks/ipc"
)

// startFails runs the daemon in the foreground for iface with the
// operations endpoint on httpAddr, expects the start to fail, and checks
// that no UAPI socket is left behind.
func startFails(t *testing.T, iface, httpAddr string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a TUN device needs root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no TUN: %v", err)
	}
	t.Setenv("WGHOOKS_HTTP", httpAddr)
	t.Setenv(envLogLevel, "silent")
	socket := ipc.SocketPath("", iface)
	t.Cleanup(func() { os.Remove(socket) })
	if code := run(args{foreground: true, iface: iface}); code != exitSetupFailed {
		t.Fatalf("run = %d, want %d", code, exitSetupFailed)
	}
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed start left %s behind (stat: %v)", socket, err)
	}
}

// TestFailedStartRemovesSocket: the operations endpoint's address is
// taken, so the start fails after the socket was made.
func TestFailedStartRemovesSocket(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	startFails(t, "wgtd4fail", taken.Addr().String())
}

// TestNonUTF8NameWithOpsEndpoint: upstream takes an interface name that
// is not UTF-8; the operations endpoint cannot label metrics with it, so
// the start fails cleanly instead of panicking.
func TestNonUTF8NameWithOpsEndpoint(t *testing.T) {
	startFails(t, "wgtd5\xff", "127.0.0.1:0")
}

//go:build unix

package ipc

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	wgipc "golang.zx2c4.com/wireguard/ipc"
)

// DefaultDir is where WireGuard tools look for userspace sockets.
const DefaultDir = "/var/run/wireguard"

func defaultSocketPath(iface string) string { return filepath.Join(DefaultDir, iface+".sock") }

func listenDefault(iface string) (net.Listener, error) {
	f, err := Open(iface)
	if err != nil {
		return nil, err
	}
	return ListenFile(iface, f)
}

// Open creates iface's socket in DefaultDir and returns it as a file, to be
// passed to a daemonized child and served there with ListenFile.
func Open(iface string) (*os.File, error) {
	f, err := wgipc.UAPIOpen(iface)
	if err != nil {
		return nil, fmt.Errorf("failed to open UAPI socket %q: %w", SocketPath("", iface), err)
	}
	return f, nil
}

// ListenFile serves an already-open UAPI socket (WG_UAPI_FD). The socket
// must live in DefaultDir under iface's name.
func ListenFile(iface string, f *os.File) (net.Listener, error) {
	l, err := wgipc.UAPIListen(iface, f)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on UAPI socket for %q: %w", iface, err)
	}
	return l, nil
}

// restrictUmask sets umask 077 (a new socket is 0700, as upstream's) and
// returns the function that restores the previous one.
func restrictUmask() (restore func()) {
	old := unix.Umask(0o077)
	return func() { unix.Umask(old) }
}

// dialDefault connects to iface's socket in DefaultDir.
func dialDefault(iface string, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("unix", defaultSocketPath(iface), timeout)
}

package ipc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	wgipc "golang.zx2c4.com/wireguard/ipc"
)

// DefaultDir is where WireGuard tools look for userspace sockets.
const DefaultDir = "/var/run/wireguard"

// SocketPath returns the socket path of iface in dir ("" means DefaultDir).
func SocketPath(dir, iface string) string {
	if dir == "" {
		dir = DefaultDir
	}
	return filepath.Join(dir, iface+".sock")
}

// Listen opens the UAPI socket of iface in dir. In DefaultDir it uses
// upstream's wgipc.UAPIOpen and UAPIListen, which also stop the listener
// when the socket file is deleted (as `wg-quick down` relies on). Other
// directories, for tests and unprivileged use, get a plain listener with
// the same permissions (directory 0755, socket 0700 via umask 077).
func Listen(dir, iface string) (net.Listener, error) {
	if dir == "" || dir == DefaultDir {
		f, err := Open(iface)
		if err != nil {
			return nil, err
		}
		return ListenFile(iface, f)
	}
	return listenDir(dir, iface)
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

func listenDir(dir, iface string) (net.Listener, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create socket directory %q: %w", dir, err)
	}
	path := SocketPath(dir, iface)
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	l, err := net.ListenUnix("unix", addr)
	if err != nil {
		// A socket left by a dead process: remove it if no one answers.
		if c, derr := net.Dial("unix", path); derr == nil {
			c.Close()
			return nil, fmt.Errorf("failed to open UAPI socket %q: in use", path)
		}
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return nil, fmt.Errorf("failed to open UAPI socket %q: %w", path, err)
		}
		if l, err = net.ListenUnix("unix", addr); err != nil {
			return nil, fmt.Errorf("failed to open UAPI socket %q: %w", path, err)
		}
	}
	l.SetUnlinkOnClose(true)
	return l, nil
}

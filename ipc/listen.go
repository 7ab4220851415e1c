package ipc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// SocketPath returns the socket path of iface in dir ("" means DefaultDir).
// On Windows the path in DefaultDir is upstream's named pipe.
func SocketPath(dir, iface string) string {
	if dir == "" || dir == DefaultDir {
		return defaultSocketPath(iface)
	}
	return filepath.Join(dir, iface+".sock")
}

// Listen opens the UAPI socket of iface in dir. In DefaultDir it uses
// upstream's listener: on Unix wgipc.UAPIOpen and UAPIListen, which also
// stop the listener when the socket file is deleted (as `wg-quick down`
// relies on); on Windows upstream's named pipe, open to SYSTEM and
// Administrators only. Other directories, for tests and unprivileged use,
// get a plain Unix socket listener with the same permissions (directory
// 0755, socket 0700 via umask 077 where there is a umask).
func Listen(dir, iface string) (net.Listener, error) {
	if dir == "" || dir == DefaultDir {
		return listenDefault(iface)
	}
	return listenDir(dir, iface)
}

func listenDir(dir, iface string) (net.Listener, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create socket directory %q: %w", dir, err)
	}
	path := SocketPath(dir, iface)
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	defer restrictUmask()()
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

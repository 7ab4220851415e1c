package ipc

import (
	"fmt"
	"net"
	"time"

	wgipc "golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/ipc/namedpipe"
)

// DefaultDir is where WireGuard tools look for userspace sockets: on
// Windows, upstream's named pipes (wgipc.UAPIListen). There is no socket
// file to pass to a child: the daemon runs in the foreground and listens
// itself, as upstream's does.
const DefaultDir = `\\.\pipe\ProtectedPrefix\Administrators\WireGuard`

func defaultSocketPath(iface string) string { return DefaultDir + `\` + iface }

func listenDefault(iface string) (net.Listener, error) {
	l, err := wgipc.UAPIListen(iface)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on UAPI pipe %q: %w", defaultSocketPath(iface), err)
	}
	return l, nil
}

// dialDefault connects to iface's named pipe.
func dialDefault(iface string, timeout time.Duration) (net.Conn, error) {
	return namedpipe.DialTimeout(defaultSocketPath(iface), timeout)
}

// restrictUmask does nothing: Windows has no umask; a socket in a
// directory of the caller's gets the directory's access list.
func restrictUmask() (restore func()) { return func() {} }

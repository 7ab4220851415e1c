package main

import (
	"fmt"
	"net"
	"os"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/wghooks/wghooks/ipc"
)

// alwaysForeground is true: on Windows, as upstream's daemon there, the
// process stays in the foreground (a service manager runs it); there is no
// TUN descriptor or socket file to hand to a child.
const alwaysForeground = true

// adoptTUN refuses WG_TUN_FD: a Wintun adapter is not a descriptor.
func adoptTUN(uint64) (wgtun.Device, error) {
	return nil, fmt.Errorf("%s is not supported on Windows", envTunFD)
}

// openUAPI checks there is no WG_UAPI_FD; the named pipe is created by
// listenUAPI once the device is up, as upstream does.
func openUAPI(string) (*os.File, error) {
	if os.Getenv(envUAPIFD) != "" {
		return nil, fmt.Errorf("%s is not supported on Windows", envUAPIFD)
	}
	return nil, nil
}

// listenUAPI listens on upstream's named pipe for iface.
func listenUAPI(iface string, _ *os.File) (net.Listener, error) {
	return ipc.Listen("", iface)
}

// removeUAPI does nothing: a named pipe goes with its listener.
func removeUAPI(string) error { return nil }

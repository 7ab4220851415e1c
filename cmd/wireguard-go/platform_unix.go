//go:build unix

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
	wgdevice "golang.zx2c4.com/wireguard/device"
	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/wghooks/wghooks/ipc"
)

// alwaysForeground is false: as upstream, the daemon backgrounds itself
// unless told otherwise.
const alwaysForeground = false

// adoptTUN adopts the TUN passed as descriptor fd (WG_TUN_FD).
func adoptTUN(fd uint64) (wgtun.Device, error) {
	if err := unix.SetNonblock(int(fd), true); err != nil {
		return nil, err
	}
	return wgtun.CreateTUNFromFile(os.NewFile(uintptr(fd), ""), wgdevice.DefaultMTU)
}

// openUAPI opens the UAPI socket, or adopts the one in WG_UAPI_FD.
func openUAPI(iface string) (*os.File, error) {
	fdStr := os.Getenv(envUAPIFD)
	if fdStr == "" {
		return ipc.Open(iface)
	}
	fd, err := strconv.ParseUint(fdStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("failed to parse %s=%q: %w", envUAPIFD, fdStr, err)
	}
	return os.NewFile(uintptr(fd), ""), nil
}

// listenUAPI serves the socket openUAPI opened.
func listenUAPI(iface string, f *os.File) (net.Listener, error) {
	return ipc.ListenFile(iface, f)
}

// removeUAPI removes iface's socket file after a failed start.
func removeUAPI(iface string) error {
	if err := os.Remove(ipc.SocketPath("", iface)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

package main

import (
	"fmt"
	"os"

	wgdevice "golang.zx2c4.com/wireguard/device"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// daemonize re-executes this binary in the background with the TUN and UAPI
// descriptors passed down as fds 3 and 4, as upstream does, so the parent
// can exit once the interface exists.
func daemonize(tdev wgtun.Device, uapiFile *os.File, level int) error {
	env := append(os.Environ(),
		fmt.Sprintf("%s=3", envTunFD),
		fmt.Sprintf("%s=4", envUAPIFD),
		fmt.Sprintf("%s=1", envForeground),
	)
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devNull.Close()
	stdout, stderr := devNull, devNull
	if os.Getenv(envLogLevel) != "" && level != wgdevice.LogLevelSilent {
		stdout, stderr = os.Stdout, os.Stderr
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("failed to determine executable: %w", err)
	}
	p, err := os.StartProcess(exe, os.Args, &os.ProcAttr{
		Files: []*os.File{devNull, stdout, stderr, tdev.File(), uapiFile},
		Dir:   ".",
		Env:   env,
	})
	if err != nil {
		return err
	}
	return p.Release()
}

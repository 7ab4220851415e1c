package main

import (
	"fmt"
	"os"

	wgdevice "golang.zx2c4.com/wireguard/device"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// daemonize re-executes this binary in the background with the TUN and UAPI
// descriptors passed down as fds 3 and 4, as upstream does, and the write
// end of a readiness pipe as fd 5 (readiness.go). It returns once the
// child has adopted the TUN and serves UAPI (nil), has failed or died
// (its error), or after readyTimeout (errNotReady, the child still
// running).
func daemonize(tdev wgtun.Device, uapiFile *os.File, level int) error {
	env := append(os.Environ(),
		fmt.Sprintf("%s=3", envTunFD),
		fmt.Sprintf("%s=4", envUAPIFD),
		fmt.Sprintf("%s=1", envForeground),
		fmt.Sprintf("%s=%d", envReadyFD, readyFD),
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
	readR, readW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("failed to create readiness pipe: %w", err)
	}
	defer readR.Close()
	p, err := os.StartProcess(exe, os.Args, &os.ProcAttr{
		Files: []*os.File{devNull, stdout, stderr, tdev.File(), uapiFile, readW},
		Dir:   ".",
		Env:   env,
	})
	// Only the child may hold the write end, so its exit is our EOF.
	readW.Close()
	if err != nil {
		return err
	}
	p.Release()
	return awaitChild(readR, readyTimeout)
}

package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"

	"golang.org/x/sys/unix"
	wgdevice "golang.zx2c4.com/wireguard/device"
	wgtun "golang.zx2c4.com/wireguard/tun"

	"wghooks/device"
	"wghooks/hooks"
	"wghooks/ipc"
)

// run sets the daemon up and serves until a signal, the TUN going away or
// the UAPI socket being removed. It returns the exit code.
func run(a args) int {
	foreground := a.foreground || os.Getenv(envForeground) == "1"
	level := logLevel()
	verbosef, errorf := logFuncs(level, a.iface)

	d, _, err := readSettings(a.iface, os.Environ())
	if err != nil {
		errorf("Invalid configuration: %v", err)
		return exitSetupFailed
	}
	cfg := &d.cfg

	tdev, err := openTUN(a.iface)
	if err != nil {
		errorf("Failed to create TUN device: %v", err)
		return exitSetupFailed
	}
	if name, err := tdev.Name(); err == nil {
		a.iface = name
		verbosef, errorf = logFuncs(level, name)
	}
	uapiFile, err := openUAPI(a.iface)
	if err != nil {
		errorf("UAPI listen error: %v", err)
		tdev.Close()
		return exitSetupFailed
	}
	// From here the socket file is this daemon's (made here, or by the
	// parent that passed WG_UAPI_FD): a failed start removes it, so no
	// socket is left that no one answers.
	socket := ipc.SocketPath("", a.iface)
	failed := func() int {
		if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
			errorf("Failed to remove UAPI socket: %v", err)
		}
		return exitSetupFailed
	}
	if !foreground {
		if err := daemonize(tdev, uapiFile, level); err != nil {
			errorf("Failed to daemonize: %v", err)
			tdev.Close()
			return failed()
		}
		return exitSetupSuccess
	}

	cfg.Name = a.iface
	cfg.Verbosef, cfg.Errorf = logFuncs(level, "")
	dev, err := device.New(tdev, *cfg)
	if err != nil {
		errorf("Failed to create device: %v", err)
		return failed()
	}
	defer dev.Close()
	verbosef("Device started")

	stopServices, err := d.startServices(dev, a.iface, errorf)
	if err != nil {
		errorf("Failed to start service: %v", err)
		return failed()
	}
	defer stopServices()

	ln, err := ipc.ListenFile(a.iface, uapiFile)
	if err != nil {
		errorf("Failed to listen on uapi socket: %v", err)
		return failed()
	}
	srv := ipc.NewServer(dev, errorf)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	verbosef("UAPI listener started")

	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM, os.Interrupt)
	select {
	case <-term:
	case err := <-serveErr:
		if err != nil {
			verbosef("UAPI listener stopped: %v", err)
		}
	case <-dev.Wait():
	}
	srv.Close()
	dev.Close()
	verbosef("Shutting down")
	return exitSetupSuccess
}

func logFuncs(level int, iface string) (verbosef, errorf hooks.Logf) {
	l := log.New(os.Stdout, "", log.Ldate|log.Ltime)
	// The device prefixes its own lines with the interface; the daemon's
	// lines get the same prefix here.
	prefix := ""
	if iface != "" {
		prefix = fmt.Sprintf("(%s) ", iface)
	}
	out := func(tag string) hooks.Logf {
		return func(format string, args ...any) { l.Printf(tag+": "+prefix+format, args...) }
	}
	if level >= wgdevice.LogLevelVerbose {
		verbosef = out("DEBUG")
	}
	if level >= wgdevice.LogLevelError {
		errorf = out("ERROR")
	}
	if verbosef == nil {
		verbosef = func(string, ...any) {}
	}
	if errorf == nil {
		errorf = func(string, ...any) {}
	}
	return verbosef, errorf
}

// openTUN creates the TUN interface, or adopts the one in WG_TUN_FD.
func openTUN(iface string) (wgtun.Device, error) {
	fdStr := os.Getenv(envTunFD)
	if fdStr == "" {
		return wgtun.CreateTUN(iface, wgdevice.DefaultMTU)
	}
	fd, err := strconv.ParseUint(fdStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("failed to parse %s=%q: %w", envTunFD, fdStr, err)
	}
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

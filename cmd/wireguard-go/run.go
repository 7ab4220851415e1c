package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"
	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/ipc"
	"github.com/wghooks/wghooks/ops"
)

// run sets the daemon up and serves until a signal, the TUN going away or
// the UAPI socket being removed. It returns the exit code.
func run(a args) int {
	// No collection until the daemon serves UAPI and the device has come
	// up (startgc.go).
	releaseGC := holdGC()
	defer releaseGC()
	// A backgrounding parent waits for this report (readiness.go); it is
	// taken before the settings are read, which know no such variable.
	report := takeStartReport()
	foreground := a.foreground || os.Getenv(envForeground) == "1" || alwaysForeground
	level := logLevel()
	verbosef, errorf := logFuncs(level, a.iface)
	// setupFailed logs a failed start and reports it to a waiting parent.
	setupFailed := func(format string, args ...any) int {
		msg := fmt.Sprintf(format, args...)
		errorf("%s", msg)
		report.failed(msg)
		return exitSetupFailed
	}
	// However the start ends before it is ready (a panic included), a
	// waiting parent hears of it; after ready this does nothing.
	defer report.failed("exited before it was ready")

	d, _, err := readSettings(a.iface, os.Environ())
	if err != nil {
		return setupFailed("Invalid configuration: %v", err)
	}
	cfg := &d.cfg

	tdev, err := openTUN(a.iface)
	if err != nil {
		return setupFailed("Failed to create TUN device: %v", err)
	}
	if name, err := tdev.Name(); err == nil {
		a.iface = name
		verbosef, errorf = logFuncs(level, name)
	}
	uapiFile, err := openUAPI(a.iface)
	if err != nil {
		tdev.Close()
		return setupFailed("UAPI listen error: %v", err)
	}
	// From here the socket file is this daemon's (made here, or by the
	// parent that passed WG_UAPI_FD): a failed start removes it, so no
	// socket is left that no one answers.
	failed := func(format string, args ...any) int {
		code := setupFailed(format, args...)
		if err := removeUAPI(a.iface); err != nil {
			errorf("Failed to remove UAPI socket: %v", err)
		}
		return code
	}
	if !foreground {
		err := daemonize(tdev, uapiFile, level)
		if errors.Is(err, errNotReady) {
			// Still starting: leave it be and return as upstream would.
			errorf("Not waiting longer: %v; it goes on starting in the background", err)
			return exitSetupSuccess
		}
		if err != nil {
			tdev.Close()
			return failed("Failed to daemonize: %v", err)
		}
		return exitSetupSuccess
	}

	cfg.Name = a.iface
	cfg.Verbosef, cfg.Errorf = logFuncs(level, "")
	dev, err := device.New(tdev, *cfg)
	if err != nil {
		return failed("Failed to create device: %v", err)
	}
	defer dev.Close()
	verbosef("Device started")

	stopServices, err := d.startServices(dev, a.iface, errorf)
	if err != nil {
		return failed("Failed to start service: %v", err)
	}
	defer stopServices()

	ln, err := listenUAPI(a.iface, uapiFile)
	if err != nil {
		return failed("Failed to listen on uapi socket: %v", err)
	}
	srv := ipc.NewServer(dev, errorf)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	verbosef("UAPI listener started")
	// Signals are caught before anyone hears the daemon is ready, so a
	// stop right after READY=1 still ends cleanly.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	report.ready()
	time.AfterFunc(startGCGrace, releaseGC)
	notify := newSystemdNotifier(errorf)
	notify.ready(func() string { return ops.Ready(dev) })

	select {
	case <-term:
	case err := <-serveErr:
		if err != nil {
			verbosef("UAPI listener stopped: %v", err)
		}
	case <-dev.Wait():
	}
	notify.stopping()
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
	return adoptTUN(fd)
}

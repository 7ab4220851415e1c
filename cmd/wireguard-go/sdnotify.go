package main

// systemd's notify protocol, for a daemon that a Type=notify unit runs in
// the foreground (deploy/systemd/wghooks@.service), through go-systemd:
//
//	READY=1     once the daemon holds the TUN and serves UAPI, the moment
//	            a backgrounding parent would return (readiness.go) and
//	            upstream's daemon would take `wg setconf`
//	STATUS=...  what /readyz says: ready, or not and why (not configured,
//	            device down, draining), checked every statusEvery
//	WATCHDOG=1  at half of WatchdogSec (WATCHDOG_USEC), from the loop
//	            that reads the device's state
//	STOPPING=1  when a signal or the socket's removal ends the daemon
//
// Without NOTIFY_SOCKET (a shell, wg-quick's oneshot unit) it sends
// nothing and starts nothing.

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/wghooks/wghooks/hooks"
)

// statusEvery is how often the notifier looks at the device for a STATUS
// change (draining is set by a UAPI transaction, which tells no one).
const statusEvery = time.Second

// systemdNotifier speaks to the service manager. The nil value, for a
// daemon without NOTIFY_SOCKET, does nothing.
type systemdNotifier struct {
	errorf   hooks.Logf
	watchdog time.Duration // between WATCHDOG=1 pings; 0: no watchdog
	stop     chan struct{}
	wg       sync.WaitGroup
	failed   atomic.Bool // a send failed and was logged; later failures are not
}

// newSystemdNotifier returns the notifier of a daemon started with
// NOTIFY_SOCKET, or nil.
func newSystemdNotifier(errorf hooks.Logf) *systemdNotifier {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	n := &systemdNotifier{errorf: errorf, stop: make(chan struct{})}
	// WATCHDOG_USEC (and WATCHDOG_PID, when set, naming this process)
	// asks for pings; systemd wants them well within the interval.
	if d, err := sddaemon.SdWatchdogEnabled(false); err != nil {
		errorf("Ignoring the systemd watchdog: %v", err)
	} else if d > 0 {
		n.watchdog = d / 2
	}
	return n
}

// ready sends READY=1 with the STATUS that notReady gives (its reason
// why the device should take no flows, "" when it should) and starts the
// loop that keeps STATUS current and pings the watchdog; stopping ends
// it.
func (n *systemdNotifier) ready(notReady func() string) {
	if n == nil {
		return
	}
	status := statusText(notReady())
	n.send(sddaemon.SdNotifyReady + "\nSTATUS=" + status)
	n.wg.Add(1)
	go n.loop(notReady, status)
}

// stopping sends STOPPING=1 and ends the loop. It may be called more
// than once, and before ready.
func (n *systemdNotifier) stopping() {
	if n == nil {
		return
	}
	select {
	case <-n.stop:
		return
	default:
	}
	close(n.stop)
	n.wg.Wait()
	n.send(sddaemon.SdNotifyStopping + "\nSTATUS=stopping")
}

// loop pings the watchdog and sends STATUS when it changes from status,
// the one last sent.
func (n *systemdNotifier) loop(notReady func() string, status string) {
	defer n.wg.Done()
	var ping <-chan time.Time
	if n.watchdog > 0 {
		t := time.NewTicker(n.watchdog)
		defer t.Stop()
		ping = t.C
		n.send(sddaemon.SdNotifyWatchdog)
	}
	check := time.NewTicker(statusEvery)
	defer check.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-ping:
			n.send(sddaemon.SdNotifyWatchdog)
		case <-check.C:
			if s := statusText(notReady()); s != status {
				status = s
				n.send("STATUS=" + status)
			}
		}
	}
}

// send writes one notification; the first failure is logged.
func (n *systemdNotifier) send(state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil && n.failed.CompareAndSwap(false, true) {
		n.errorf("Failed to notify systemd: %v", err)
	}
}

// statusText is the STATUS line for a readiness reason.
func statusText(notReady string) string {
	if notReady == "" {
		return "ready"
	}
	return "not ready: " + notReady
}

package main

// The backgrounding parent returns only once its child has adopted the TUN
// and serves the UAPI socket, so a script's next line (`ip link set wg0
// netns other`, `wg setconf wg0 ...`) never races the child's start.
// Upstream's parent returns as soon as the child is forked; this is the one
// place the daemon differs, and only in when the parent returns.
//
//	parent                              child (WG_PROCESS_FOREGROUND=1)
//	creates TUN and UAPI socket
//	os.Pipe; passes the write end as
//	fd 5, named by WGHOOKS_READY_FD
//	reads the pipe until EOF            adopts the TUN (fd 3), serves UAPI (fd 4)
//	                                    writes "R" (or "F" and its error), closes
//	"R": exit 0; "F...": exit 1 with
//	the child's error; EOF alone: the
//	child died, exit 1; nothing within
//	readyTimeout: exit 0, as upstream

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	// envReadyFD names the child's end of the readiness pipe. It is the
	// parent's and child's private agreement, not a setting: the child
	// reads and removes it before reading its settings.
	envReadyFD = "WGHOOKS_READY_FD"
	// readyFD is the descriptor the parent passes the pipe as, after
	// upstream's 0-2, WG_TUN_FD=3 and WG_UAPI_FD=4.
	readyFD = 5
	// readyTimeout bounds the parent's wait. A child still starting after
	// it is left running and the parent exits 0, as upstream's would have
	// at once.
	readyTimeout = 10 * time.Second

	reportReady  = 'R'
	reportFailed = 'F'
)

// errNotReady is awaitChild's answer when the child neither reported nor
// died within the timeout.
var errNotReady = errors.New("daemon not ready")

// startReport is the child's end of the readiness pipe. The zero value (a
// daemon nobody waits for: foreground, or started by a parent that passed
// no pipe) reports nothing.
type startReport struct {
	f *os.File
}

// takeStartReport reads and removes envReadyFD from the environment.
func takeStartReport() *startReport {
	s, ok := os.LookupEnv(envReadyFD)
	if !ok {
		return &startReport{}
	}
	os.Unsetenv(envReadyFD)
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return &startReport{}
	}
	return &startReport{f: os.NewFile(uintptr(fd), "readiness pipe")}
}

// ready tells the parent the daemon holds the TUN and serves UAPI.
func (r *startReport) ready() { r.send(string(reportReady)) }

// failed tells the parent the start failed, and why.
func (r *startReport) failed(msg string) { r.send(string(reportFailed) + msg) }

// send writes the one report and closes the pipe; later reports are
// dropped. A parent that has gone already is no error of the daemon's.
func (r *startReport) send(msg string) {
	if r.f == nil {
		return
	}
	r.f.WriteString(msg)
	r.f.Close()
	r.f = nil
}

// awaitChild reads the child's report from the pipe's read end until the
// child closes it (reporting, or dying) or timeout passes. It returns nil
// once the child is ready, errNotReady on timeout, and otherwise the
// child's error.
func awaitChild(r *os.File, timeout time.Duration) error {
	if err := r.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("failed to wait for the daemon: %w", err)
	}
	msg, err := io.ReadAll(r)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w after %v", errNotReady, timeout)
	case err != nil:
		return fmt.Errorf("failed to wait for the daemon: %w", err)
	case len(msg) == 0:
		return errors.New("daemon exited before it was ready")
	case msg[0] == reportReady:
		return nil
	case msg[0] == reportFailed:
		return fmt.Errorf("daemon failed to start: %s", strings.TrimSpace(string(msg[1:])))
	}
	return fmt.Errorf("daemon sent an unknown readiness report %q", msg)
}

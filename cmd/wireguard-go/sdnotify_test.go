package main

import (
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// notifyListener is a service manager's end of NOTIFY_SOCKET: a unix
// datagram socket whose path the test exports.
func notifyListener(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

// nextNotify reads notifications until one contains want, failing after
// timeout; it returns that one.
func nextNotify(t *testing.T, c *net.UnixConn, want string, timeout time.Duration) string {
	t.Helper()
	buf := make([]byte, 4096)
	var seen []string
	deadline := time.Now().Add(timeout)
	for {
		c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no notification with %q within %v (got %q): %v", want, timeout, seen, err)
		}
		msg := string(buf[:n])
		if strings.Contains(msg, want) {
			return msg
		}
		seen = append(seen, msg)
	}
}

// TestSystemdNotifier: READY=1 with the readiness as STATUS, WATCHDOG=1
// while WATCHDOG_USEC asks for it, STATUS following a drain, and
// STOPPING=1 at the end.
func TestSystemdNotifier(t *testing.T) {
	c := notifyListener(t)
	t.Setenv("WATCHDOG_USEC", "200000") // 200 ms: a ping every 100 ms
	var reason atomic.Value
	reason.Store("not configured")
	n := newSystemdNotifier(t.Logf)
	if n == nil || n.watchdog != 100*time.Millisecond {
		t.Fatalf("notifier = %+v, want one pinging every 100ms", n)
	}
	n.ready(func() string { return reason.Load().(string) })
	if msg := nextNotify(t, c, "READY=1", 5*time.Second); !strings.Contains(msg, "STATUS=not ready: not configured") {
		t.Fatalf("READY=1 came with %q, want the readiness as STATUS", msg)
	}
	nextNotify(t, c, "WATCHDOG=1", 5*time.Second)
	nextNotify(t, c, "WATCHDOG=1", 5*time.Second)
	reason.Store("draining")
	nextNotify(t, c, "STATUS=not ready: draining", 5*time.Second)
	n.stopping()
	nextNotify(t, c, "STOPPING=1", 5*time.Second)
	n.stopping() // idempotent
}

// TestSystemdNotifierOff: without NOTIFY_SOCKET there is no notifier,
// and its methods do nothing.
func TestSystemdNotifierOff(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := newSystemdNotifier(t.Logf)
	if n != nil {
		t.Fatalf("notifier without NOTIFY_SOCKET: %+v", n)
	}
	n.ready(func() string { return "" })
	n.stopping()
}

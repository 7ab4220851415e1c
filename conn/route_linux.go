//go:build linux

package conn

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// routeDebounce gathers a burst of netlink events (a link going down
// removes its addresses and routes one message at a time) into one call.
const routeDebounce = 50 * time.Millisecond

// RouteWatcher calls a function after route, address or link changes,
// read from a netlink socket (the events upstream's own route listener
// would have seen, had its bind not been wrapped).
type RouteWatcher struct {
	f    *os.File
	wg   sync.WaitGroup
	once sync.Once
}

// WatchRoutes subscribes to IPv4 and IPv6 route and address changes and
// link changes in the calling thread's network namespace. changed runs on
// the watcher's own goroutine, at most once per burst of events; it may
// block (events queue in the socket meanwhile). Close stops it and waits.
func WatchRoutes(changed func()) (*RouteWatcher, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("failed to open netlink socket: %w", err)
	}
	groups := uint32(unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR |
		unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("failed to subscribe to route changes: %w", err)
	}
	w := &RouteWatcher{f: os.NewFile(uintptr(fd), "netlink-route")}
	w.wg.Add(1)
	go w.run(changed)
	return w, nil
}

func (w *RouteWatcher) run(changed func()) {
	defer w.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		if !w.readEvent(buf, time.Time{}) {
			return
		}
		// More of the same burst?
		for w.readEvent(buf, time.Now().Add(routeDebounce)) {
		}
		if w.closed() {
			return
		}
		changed()
	}
}

// readEvent reads one batch of messages and reports whether any was a
// route, address or link change. It returns false on timeout or close.
func (w *RouteWatcher) readEvent(buf []byte, deadline time.Time) bool {
	for {
		w.f.SetReadDeadline(deadline)
		n, err := w.f.Read(buf)
		if err != nil {
			return false
		}
		if isRouteEvent(buf[:n]) {
			return true
		}
	}
}

func (w *RouteWatcher) closed() bool {
	var closed bool
	// A closed file fails SetReadDeadline.
	if err := w.f.SetReadDeadline(time.Time{}); err != nil {
		closed = true
	}
	return closed
}

// isRouteEvent reports whether a netlink datagram holds a route, address
// or link message.
func isRouteEvent(b []byte) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.RTM_NEWROUTE, unix.RTM_DELROUTE,
			unix.RTM_NEWADDR, unix.RTM_DELADDR,
			unix.RTM_NEWLINK, unix.RTM_DELLINK:
			return true
		}
	}
	return false
}

// Close stops watching and waits for the watcher's goroutine. It is
// idempotent.
func (w *RouteWatcher) Close() error {
	var err error
	w.once.Do(func() {
		err = w.f.Close()
		w.wg.Wait()
	})
	return err
}

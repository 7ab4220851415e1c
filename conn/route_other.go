//go:build !linux

package conn

import (
	"errors"
	"fmt"
)

// RouteWatcher watches route changes; only Linux has one.
type RouteWatcher struct{}

// WatchRoutes is not supported on this platform.
func WatchRoutes(func()) (*RouteWatcher, error) {
	return nil, fmt.Errorf("failed to watch routes: %w", errors.ErrUnsupported)
}

// Close does nothing.
func (w *RouteWatcher) Close() error { return nil }

// Package feature is the narrow view through which wghooks' features see
// the device core, and the small value types they share.
//
// A feature (restart, jit, endpoints, flowescape, guard: one package each
// under device/) is built by the core with a Host and its own config, owns
// its state and its goroutines (started through Host.Go, so Close waits for
// them), and declares what it adds through the Feature interface: receive
// and send hooks, extension keys with their docs and get lines, a
// configuration event, and optionally its own section of the state file.
// No feature imports another feature, nor the core; what two features need
// to share lives here (Sources, Identity, View, Counters and the conversions
// in addr.go); the monotonic clock of the packet paths is internal/mono,
// which conn shares.
//
// Lock order, for the whole device (each feature documents the order of
// its own locks below its place here):
//
//	core lifecycle  (Device.Up/Down/Close)
//	  restart startup, then restart state
//	    jit mu, then jit installMu is never taken under mu; endpoints mu,
//	    then hostPeer.mu, then its table lock
//	      core peer set (read lock), Sources, replay and budget caches
//	        (leaves)
//
// Host.Configure takes no lifecycle lock and may be called with a
// feature's own locks held only if that feature's Configured handler does
// not take them for changes of its own origin.
package feature

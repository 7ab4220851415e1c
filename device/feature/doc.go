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
// to share lives here (Sources, Identity, View, Counters and the key
// conversions in addr.go); an endpoint's address is conn.DstAddrPort, and
// the monotonic clock of the packet paths is internal/mono, both shared
// with conn.
//
// Lock order, for the whole device, written once here (outer first; a
// package's own comments name its locks, this is how they nest):
//
//	core lifecycle (Device.Up, Down, Close; BeforeUp and AfterUp run
//	under it)
//	  restart startup (the state file is applied, sections restored and
//	  Host.Configure called under it)
//	    restart state, then restart configured
//	    jit installMu (Host.Configure is called under it), then jit mu
//	      core peer set (written by every configuration change)
//	endpoints mu, then a hostPeer's mu, then the peer table's writer lock
//
// Leaves, never held while taking another lock: Sources, the guard's
// bucket, budgets and replay cache, jit's watch and outbound route set,
// restart's recent initiations and stale-session tables, flowescape's
// flows. A feature's Configured runs inside Host.Configure, so it must not
// take a lock its own caller of Configure holds: the restart ignores its
// own changes, jit takes mu (never held across Configure).
//
// Receive and send hooks run on upstream's packet goroutines and take
// only leaves: a configuration change that rebinds the sockets
// (listen_port) waits for those goroutines.
package feature

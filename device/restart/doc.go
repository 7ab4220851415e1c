// Package restart is wghooks' recovery across restarts: the state file
// that carries learned endpoints and the features' own sections to the
// next process, the handshake broadcast at Up, stale-session wake, drain
// before a planned restart, client-side dead-peer detection, and the
// same state handed across machines through a fleet's shared store, for
// a replacement gateway that takes over the address (fleet.go)
// (restart.go lists the flow). It sees the device only through
// feature.Host, and the other features' state only as the opaque
// sections (feature.StateSection) the core hands it.
package restart

// Package restart is wghooks' recovery across restarts: the state file
// that carries learned endpoints and the features' own sections to the
// next process, the handshake broadcast at Up, stale-session wake, drain
// before a planned restart, and client-side dead-peer detection
// (restart.go lists the flow). It sees the device only through
// feature.Host, and the other features' state only as the opaque
// sections (feature.StateSection) the core hands it.
package restart

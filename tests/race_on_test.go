//go:build race

package tests

// raceEnabled: the race detector makes X25519 about ten times slower, so
// tests that handshake with hundreds of clients at once scale down under
// it (they then check for races, not capacity).
const raceEnabled = true

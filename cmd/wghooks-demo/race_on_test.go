//go:build race

package main

// raceEnabled: the race detector makes X25519 about ten times slower, so
// the mass arrival scales down under it (it then checks for races, not
// capacity).
const raceEnabled = true

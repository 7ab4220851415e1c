//go:build race

package testkit

// RaceEnabled reports a build with the race detector, which makes X25519
// about ten times slower: tests and demos that handshake with hundreds of
// clients at once scale down under it (they then check for races, not
// capacity).
const RaceEnabled = true

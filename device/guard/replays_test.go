package guard

import (
	"encoding/binary"
	"testing"
	"time"
)

// TestReplayCache: a passed initiation's copies are caught for at least
// one window, forgotten after two, and the cache never holds more than
// two generations however fast initiations pass.
func TestReplayCache(t *testing.T) {
	var c replayCache
	mac := func(i int) (m [16]byte) {
		binary.LittleEndian.PutUint64(m[:], uint64(i)+1)
		return m
	}
	now := time.Now()
	if c.has(mac(0)) {
		t.Fatal("an empty cache has an entry")
	}
	c.add(mac(0), now)
	if !c.has(mac(0)) || c.has(mac(1)) {
		t.Fatal("the cache does not hold exactly what was added")
	}
	c.add(mac(1), now.Add(replayWindow)) // a new generation
	if !c.has(mac(0)) {
		t.Fatal("a copy was forgotten within two windows")
	}
	c.add(mac(2), now.Add(2*replayWindow))
	if c.has(mac(0)) {
		t.Fatal("a copy was remembered past two windows")
	}

	// A burst of passes within one window rotates by size.
	for i := range 5 * replayGeneration {
		c.add(mac(100+i), now.Add(2*replayWindow))
	}
	if n := len(c.cur) + len(c.prev); n > 2*replayGeneration {
		t.Fatalf("the cache holds %d entries, want at most %d", n, 2*replayGeneration)
	}
	if !c.has(mac(100 + 5*replayGeneration - 1)) {
		t.Fatal("the newest entry was lost")
	}
}

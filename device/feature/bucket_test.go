package feature

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	var b Bucket
	if !b.Take(now, 10, 10) {
		t.Fatal("a new bucket was not full")
	}
	b.Fill(10, now)
	n := 0
	for range 100 {
		if b.Take(now, 10, 10) {
			n++
		}
	}
	if n != 10 {
		t.Fatalf("%d tokens at once, want the burst of 10", n)
	}
	if !b.Take(now.Add(100*time.Millisecond), 10, 10) || b.Take(now.Add(100*time.Millisecond), 10, 10) {
		t.Fatal("a tenth of a second at 10/s did not bring exactly one token")
	}
	b.Give(10)
	if !b.Take(now.Add(100*time.Millisecond), 10, 10) {
		t.Fatal("a token given back could not be taken")
	}
	if b.Take(now, 10, 10) {
		t.Fatal("a reading earlier than the last one brought tokens")
	}
	if got := b.Counted(); !got.Equal(now.Add(100 * time.Millisecond)) {
		t.Fatalf("Counted = %v, want the last refill", got)
	}
}

package jit

import (
	"testing"
	"time"
)

// TestLookupBudget: the bucket starts full with one second's worth,
// refuses past it, refills at the rate up to the burst, and a rate of 0
// or less allows everything; the default is defaultLookupRate and a
// negative rate stays off.
func TestLookupBudget(t *testing.T) {
	var b lookupBudget
	b.init(10)
	now := b.bucket.Counted()
	take := func() int {
		n := 0
		for i := 0; i < 100; i++ {
			if b.allow(now) {
				n++
			}
		}
		return n
	}
	if allowed := take(); allowed != 10 {
		t.Fatalf("%d of 100 allowed at once, want the burst of 10", allowed)
	}
	now = now.Add(time.Second / 2)
	if allowed := take(); allowed != 5 {
		t.Fatalf("%d allowed after half a second, want 5", allowed)
	}
	now = now.Add(time.Hour)
	if allowed := take(); allowed != 10 {
		t.Fatalf("%d allowed after an hour, want no more than the burst of 10", allowed)
	}

	var off lookupBudget
	off.init(-1)
	for i := 0; i < 1000; i++ {
		if !off.allow(now) {
			t.Fatal("a negative rate refused a lookup")
		}
	}
	if c := (Config{}).withDefaults(); c.MaxLookupRate != defaultLookupRate {
		t.Errorf("default MaxLookupRate %d, want %d", c.MaxLookupRate, defaultLookupRate)
	}
	if c := (Config{MaxLookupRate: -1}).withDefaults(); c.MaxLookupRate >= 0 {
		t.Errorf("MaxLookupRate -1 became %d, want it off", c.MaxLookupRate)
	}
}

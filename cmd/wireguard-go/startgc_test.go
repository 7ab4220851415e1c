package main

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// gcSettings reads GOGC and the memory limit without changing them.
func gcSettings() (percent, limit uint64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// gcOff is GOGC=off as runtime/metrics reports it.
const gcOff = ^uint64(0)

// TestHoldGC: collection is off (the limit startHeapLimit) while held and as before after release, which may
// come twice; GOGC or GOMEMLIMIT set by the operator leaves it alone.
func TestHoldGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	percent, limit := gcSettings()

	release := holdGC()
	if p, l := gcSettings(); p != gcOff || l != startHeapLimit {
		t.Errorf("while held: GOGC %d, limit %d; want off and %d", p, l, startHeapLimit)
	}
	release()
	release()
	if p, l := gcSettings(); p != percent || l != limit {
		t.Errorf("after release: GOGC %d, limit %d; want %d and %d", p, l, percent, limit)
	}

	t.Setenv("GOGC", "50")
	holdGC()
	if p, l := gcSettings(); p != percent || l != limit {
		t.Errorf("with GOGC set: GOGC %d, limit %d; want them untouched (%d, %d)", p, l, percent, limit)
	}
}

// TestHoldGCEndsAtFirstCollection: a collection while held (the heap
// reached startHeapLimit, here forced) ends the hold, so a start whose
// heap stays above the limit is not collected over and over.
func TestHoldGCEndsAtFirstCollection(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	percent, limit := gcSettings()
	release := holdGC()
	defer release()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if p, l := gcSettings(); p == percent && l == limit {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("hold not ended 10 s after collections")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

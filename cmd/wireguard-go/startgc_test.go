package main

import (
	"runtime/debug"
	"testing"
)

// TestHoldGC: collection is off (up to startHeapLimit) while held and as
// before after release, which may come twice; GOGC or GOMEMLIMIT set by
// the operator leaves it alone.
func TestHoldGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	percent := debug.SetGCPercent(-1)
	debug.SetGCPercent(percent)
	limit := debug.SetMemoryLimit(-1)

	release := holdGC()
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Errorf("GC percent while held = %d, want -1 (off)", p)
	}
	if l := debug.SetMemoryLimit(-1); l != startHeapLimit {
		t.Errorf("memory limit while held = %d, want %d", l, startHeapLimit)
	}
	release()
	release()
	if p := debug.SetGCPercent(percent); p != percent {
		t.Errorf("GC percent after release = %d, want %d", p, percent)
	}
	if l := debug.SetMemoryLimit(-1); l != limit {
		t.Errorf("memory limit after release = %d, want %d", l, limit)
	}

	t.Setenv("GOGC", "50")
	holdGC()()
	if p := debug.SetGCPercent(percent); p != percent {
		t.Errorf("GC percent with GOGC set = %d, want it untouched (%d)", p, percent)
	}
}

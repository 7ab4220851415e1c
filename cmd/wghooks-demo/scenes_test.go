package main

import (
	"runtime"
	"testing"
	"time"
)

// TestScenes runs every scene as `make demo` does: each must succeed and
// leave no goroutine running, so the README's main command stays true.
// Their figures are printed, never checked.
func TestScenes(t *testing.T) {
	want := map[string]bool{"tunnel": true, "restart": true, "endpoints": true, "jit": true, "flood": true, "ha": true}
	for _, s := range scenes {
		delete(want, s.name)
		t.Run(s.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			if err := s.run(newTimeline()); err != nil {
				t.Fatal(err)
			}
			var now int
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if now = runtime.NumGoroutine(); now <= before {
					return
				}
			}
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines before the scene, %d 10 s after it ended:\n%s", before, now, buf[:runtime.Stack(buf, true)])
		})
	}
	for name := range want {
		t.Errorf("no scene named %s in the list", name)
	}
}

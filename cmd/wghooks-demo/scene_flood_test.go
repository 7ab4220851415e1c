package main

import (
	"runtime"
	"testing"
	"time"
)

// TestSceneFlood runs the flood scene as `wghooks-demo -scene flood`
// does: it must succeed (the guard engages and releases, the known
// client's stream survives, the newcomer gets in) and leave no goroutine
// running. Its throughput figures are printed, never checked.
func TestSceneFlood(t *testing.T) {
	var run func(*timeline) error
	for _, s := range scenes {
		if s.name == "flood" {
			run = s.run
		}
	}
	if run == nil {
		t.Fatal("no scene named flood is registered")
	}
	before := runtime.NumGoroutine()
	if err := run(newTimeline()); err != nil {
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
}

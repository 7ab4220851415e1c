package main

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/wghooks/wghooks/internal/testkit"
)

// TestScenes runs every scene as `make demo` does: each must succeed,
// reach the protocol outcomes below and leave no goroutine running, so the
// README's main command stays true. Their figures are printed, never
// checked.
func TestScenes(t *testing.T) {
	if testkit.RaceEnabled {
		massClients = 64
	}
	want := map[string]bool{"tunnel": true, "restart": true, "endpoints": true, "jit": true, "flood": true, "ha": true,
		"mass": true, "fleet": true, "metrics": true}
	for _, s := range scenes {
		delete(want, s.name)
		t.Run(s.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			tl := newTimeline()
			if err := s.run(tl); err != nil {
				t.Fatal(err)
			}
			if check := outcomes[s.name]; check != nil {
				for _, complaint := range check(tl.outcomes) {
					t.Errorf("%s (outcomes %v)", complaint, tl.outcomes)
				}
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

// outcomes checks, by scene, the protocol outcomes it recorded (counts,
// never times); each returns what is wrong.
var outcomes = map[string]func(o map[string]int) []string{
	"mass": func(o map[string]int) (bad []string) {
		if o["clients"] == 0 || o["clients in"] != o["clients"] {
			bad = append(bad, fmt.Sprintf("%d of %d clients in, want all", o["clients in"], o["clients"]))
		}
		if n := o["most initiations by a client"]; n < 1 || n > 2 {
			bad = append(bad, fmt.Sprintf("a client sent %d initiations, want 1 or 2 (at most one retransmit)", n))
		}
		if o["batches"] == 0 {
			bad = append(bad, "the store was never asked for a batch")
		}
		return bad
	},
	"fleet": func(o map[string]int) (bad []string) {
		n := o["clients"]
		if n == 0 || o["clients back"] != n {
			bad = append(bad, fmt.Sprintf("%d of %d clients back through the replacement, want all", o["clients back"], n))
		}
		if o["clients reached by one initiation"] != n || o["initiations of the replacement"] != n {
			bad = append(bad, fmt.Sprintf("the replacement sent %d initiations and %d clients got exactly one, want one each for %d",
				o["initiations of the replacement"], o["clients reached by one initiation"], n))
		}
		if o["initiations of the clients"] != 0 {
			bad = append(bad, fmt.Sprintf("the clients sent %d initiations of their own, want none", o["initiations of the clients"]))
		}
		if o["initiations without takeover"] != 0 {
			bad = append(bad, fmt.Sprintf("the replacement without takeover sent %d initiations, want none", o["initiations without takeover"]))
		}
		return bad
	},
	"metrics": func(o map[string]int) (bad []string) {
		if o["families with a series per peer"] != len(metricsSeries) {
			bad = append(bad, fmt.Sprintf("%d of the %d per-peer families have a series for each peer", o["families with a series per peer"], len(metricsSeries)))
		}
		return bad
	},
}

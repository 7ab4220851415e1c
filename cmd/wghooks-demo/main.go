// Command wghooks-demo shows wghooks at work on embedded defaults, in one
// process, without root: WireGuard devices on gVisor netstack talking over
// loopback UDP. Each scene prints a short timeline.
//
//	go run ./cmd/wghooks-demo            # every scene
//	go run ./cmd/wghooks-demo -scene restart
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// scene is one demonstration. Features add theirs from init in their own
// file (scene_<feature>.go); order sorts them.
type scene struct {
	order int
	name  string
	title string
	run   func(tl *timeline) error
}

var scenes []scene

func main() {
	only := flag.String("scene", "", "run only this scene (names: "+sceneNames()+")")
	flag.Parse()
	sort.Slice(scenes, func(i, j int) bool { return scenes[i].order < scenes[j].order })
	failed := 0
	for _, s := range scenes {
		if *only != "" && s.name != *only {
			continue
		}
		fmt.Printf("\n== %s\n", s.title)
		tl := newTimeline()
		if err := s.run(tl); err != nil {
			tl.say("FAILED: %v", err)
			failed++
		}
	}
	if failed > 0 {
		fmt.Printf("\n%d scene(s) failed\n", failed)
		os.Exit(1)
	}
	fmt.Println("\nall scenes done")
}

func sceneNames() string {
	var names []string
	for _, s := range scenes {
		names = append(names, s.name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// timeline prints lines stamped with the time since the scene began.
type timeline struct{ start time.Time }

func newTimeline() *timeline { return &timeline{start: time.Now()} }

func (t *timeline) say(format string, args ...any) {
	fmt.Printf("  %7.3fs  %s\n", time.Since(t.start).Seconds(), fmt.Sprintf(format, args...))
}

// since returns the time since the scene began, for "recovered in X ms".
func (t *timeline) since(from time.Time) string {
	return time.Since(from).Round(time.Millisecond).String()
}

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

// scene is one demonstration, in its own file (scene_<feature>.go).
type scene struct {
	name  string
	title string
	run   func(tl *timeline) error
}

// scenes is every scene, in the order they run: the basic tunnel first,
// then each feature, building from one peer to a fleet.
var scenes = []scene{
	{name: "tunnel", title: "Two wghooks devices, one tunnel, real HTTP through it", run: sceneTunnel},
	{name: "restart", title: "A server restarts under a roaming client that keeps sending", run: sceneRestart},
	{name: "endpoints", title: "A server known by name: its IPv6 address dies, then comes back", run: sceneEndpoints},
	{name: "jit", title: "Just-in-time peers: a gateway that knows no one until they knock", run: sceneJIT},
	{name: "flood", title: "A gateway under a handshake flood: its peer keeps streaming, a newcomer still gets in", run: sceneFlood},
	{name: "ha", title: "Two servers with one key behind a UDP load balancer; the backend carrying the flow dies", run: sceneHA},
	{name: "mass", title: "Mass arrival: a gateway's whole store of clients knocks at once", run: sceneMass},
	{name: "fleet", title: "Fleet takeover: a gateway machine dies, a replacement with its key reads the shared store", run: sceneFleet},
	{name: "metrics", title: "Per-peer metrics: one scrape of a gateway's /metrics", run: sceneMetrics},
}

func main() {
	only := flag.String("scene", "", "run only this scene (names: "+sceneNames()+")")
	flag.Parse()
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

// timeline prints lines stamped with the time since the scene began, and
// keeps the counts a scene records for scenes_test.go to check.
type timeline struct {
	start    time.Time
	outcomes map[string]int
}

func newTimeline() *timeline { return &timeline{start: time.Now(), outcomes: map[string]int{}} }

// record keeps a protocol outcome (a count, never a time) under name.
func (t *timeline) record(name string, n int) { t.outcomes[name] = n }

func (t *timeline) say(format string, args ...any) {
	fmt.Printf("  %7.3fs  %s\n", time.Since(t.start).Seconds(), fmt.Sprintf(format, args...))
}

// since returns the time since the scene began, for "recovered in X ms".
func (t *timeline) since(from time.Time) string {
	return time.Since(from).Round(time.Millisecond).String()
}

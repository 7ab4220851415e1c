package main

import (
	"strings"
	"testing"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

// TestStatusShowsDeviceState: `wghooks status` prints the device's own
// wghooks state (draining, the flood guard) under the interface line.
func TestStatusShowsDeviceState(t *testing.T) {
	d := testkit.Device(t, "198.18.10.2", device.Config{})
	dir := testkit.ServeUAPI(t, d, "wgstat", nil)
	if err := d.DrainPeers(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := findCommand("status").run(dir, []string{"wgstat"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"interface wgstat: listening on port", "  wghooks_draining=true\n", "  wghooks_flooded=false\n", "  wghooks_handshakes_guarded=0\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}

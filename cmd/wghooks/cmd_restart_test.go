package main

import (
	"strings"
	"testing"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

func TestRestartCommands(t *testing.T) {
	d := testkit.Device(t, "198.18.10.1", device.Config{})
	dir := testkit.ServeUAPI(t, d, "wgcli", nil)

	run := func(name string, args ...string) (string, error) {
		var out strings.Builder
		err := findCommand(name).run(dir, args, &out)
		return out.String(), err
	}
	if out, err := run("drain", "wgcli"); err != nil || out != "wgcli: drained\n" || !d.Draining() {
		t.Fatalf("drain: %q, %v, draining %v", out, err, d.Draining())
	}
	if out, err := run("undrain", "wgcli"); err != nil || out != "wgcli: no longer draining\n" || d.Draining() {
		t.Fatalf("undrain: %q, %v, draining %v", out, err, d.Draining())
	}
	if _, err := run("broadcast", "wgcli"); err != nil {
		t.Fatalf("broadcast: %v", err)
	}
	if _, err := run("save-state", "wgcli"); err != nil {
		t.Fatalf("save-state without a state file: %v", err)
	}
	if _, err := run("drain"); err == nil {
		t.Error("drain without an interface: no error")
	}
	if _, err := run("drain", "nosuch"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("drain of a missing interface: %v, want an error naming it", err)
	}
}

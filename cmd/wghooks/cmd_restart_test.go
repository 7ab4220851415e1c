package main

import (
	"net/netip"
	"strings"
	"testing"

	"wghooks/device"
	"wghooks/ipc"
	"wghooks/tun"
)

func TestRestartCommands(t *testing.T) {
	tdev, _, err := tun.NewNetstack([]netip.Addr{netip.MustParseAddr("198.18.10.1")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := device.New(tdev, device.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := t.TempDir()
	ln, err := ipc.Listen(dir, "wgcli")
	if err != nil {
		t.Fatal(err)
	}
	srv := ipc.NewServer(d, nil)
	go srv.Serve(ln)
	defer srv.Close()

	run := func(name string, args ...string) (string, error) {
		var out strings.Builder
		err := commands[name].run(dir, args, &out)
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

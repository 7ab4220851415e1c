package tests

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDaemonVersion runs the built daemon's --version: the first line
// keeps upstream's shape, which scripts parse, and the upstream line names
// the module version go.mod requires, the engine the binary runs.
func TestDaemonVersion(t *testing.T) {
	out, err := exec.Command(wghooksBinary(t), "--version").Output()
	if err != nil {
		t.Fatalf("wireguard-go --version: %v", err)
	}
	lines := strings.Split(string(out), "\n")
	if !regexp.MustCompile(`^wireguard-go v[0-9][^ ]*$`).MatchString(lines[0]) || lines[1] != "" {
		t.Fatalf("first lines %q, want upstream's shape \"wireguard-go vX\" then a blank line", lines[:2])
	}
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	req := regexp.MustCompile(`(?m)^\s*golang\.zx2c4\.com/wireguard (v\S+)`).FindSubmatch(mod)
	if req == nil {
		t.Fatal("go.mod requires no golang.zx2c4.com/wireguard")
	}
	want := "upstream: golang.zx2c4.com/wireguard " + string(req[1])
	if !strings.Contains(string(out), want+"\n") {
		t.Fatalf("--version lacks %q:\n%s", want, out)
	}
	if !regexp.MustCompile(`(?m)^wghooks: [0-9]`).Match(out) {
		t.Fatalf("--version names no wghooks version:\n%s", out)
	}
}

package main

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// notLinked are packages the CLI must not link: it talks to the engine over
// the UAPI socket only. "/..." also rules out the packages under a path.
var notLinked = []string{
	"github.com/wghooks/wghooks/device/...", // the engine and its features
	"golang.zx2c4.com/wireguard/device",     // upstream's engine
	"gvisor.dev/gvisor/...",                 // netstack, which only the engine's tests and demo need
}

// TestCLIDoesNotLinkTheEngine: `go list -deps` of the CLI holds none of
// notLinked. The SQLite driver (modernc.org/sqlite, for `peers`) and
// upstream's ipc package (socket paths) it does link, and needs.
func TestCLIDoesNotLinkTheEngine(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("failed to find the go tool: %v", err)
		}
		t.Skipf("no go tool to list the CLI's dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		msg := ""
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			msg = string(ee.Stderr)
		}
		t.Fatalf("failed to run go list -deps: %v\n%s", err, msg)
	}
	deps := strings.Fields(string(out))
	for _, bad := range notLinked {
		var linked []string
		for _, dep := range deps {
			if matchPattern(bad, dep) {
				linked = append(linked, dep)
			}
		}
		if len(linked) > 0 {
			t.Errorf("the CLI links %s (%d packages: %s); see what imports them with\n\tgo list -deps -f '{{.ImportPath}}: {{.Imports}}' ./cmd/wghooks", bad, len(linked), strings.Join(linked, " "))
		}
	}
}

// matchPattern reports whether pkg is pattern, or under it when pattern
// ends in "/...".
func matchPattern(pattern, pkg string) bool {
	dir, ok := strings.CutSuffix(pattern, "/...")
	if !ok {
		return pkg == pattern
	}
	return pkg == dir || strings.HasPrefix(pkg, dir+"/")
}

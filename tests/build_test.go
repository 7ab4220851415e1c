package tests

// Building the daemons and CLI the process tests run (the netns tests,
// the crash and permission tests), once per test binary, on any platform.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestMain removes namespaces left by killed runs before the tests and the
// daemon binaries built for this run after them.
func TestMain(m *testing.M) {
	netnsSweepStale()
	code := m.Run()
	netnsRemoveBuilds()
	os.Exit(code)
}

// netnsBuildPrefix starts the temporary directory of built daemons,
// followed by the test binary's pid.
const netnsBuildPrefix = "wghooks-bin-"

// Daemon binaries built for this test binary, once each.
var netnsBuilds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string // package → binary path
	errs map[string]error
}

// netnsBuild builds a main package (by import path) into a temporary
// directory, once per test binary, and returns the binary's path.
func netnsBuild(t testing.TB, pkg, name string) string {
	t.Helper()
	b := &netnsBuilds
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.bins[pkg]; ok {
		return p
	}
	if err, ok := b.errs[pkg]; ok {
		t.Fatal(err)
	}
	if b.dir == "" {
		dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", netnsBuildPrefix, os.Getpid()))
		if err != nil {
			t.Fatal(err)
		}
		b.dir, b.bins, b.errs = dir, map[string]string{}, map[string]error{}
	}
	out := filepath.Join(b.dir, name)
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		goTool = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, pkg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.errs[pkg] = fmt.Errorf("failed to build %q: %v: %s", pkg, err, msg)
		t.Fatal(b.errs[pkg])
	}
	b.bins[pkg] = out
	return out
}

// netnsRemoveBuilds deletes the binaries built by netnsBuild.
func netnsRemoveBuilds() {
	netnsBuilds.mu.Lock()
	defer netnsBuilds.mu.Unlock()
	if netnsBuilds.dir != "" {
		os.RemoveAll(netnsBuilds.dir)
	}
}

// wghooksBinary returns our drop-in daemon, cmd/wireguard-go.
func wghooksBinary(t testing.TB) string {
	return netnsBuild(t, "github.com/wghooks/wghooks/cmd/wireguard-go", "wireguard-go")
}

// upstreamBinary returns upstream's wireguard-go built from the module
// version wghooks depends on.
func upstreamBinary(t testing.TB) string {
	return netnsBuild(t, "golang.zx2c4.com/wireguard", "wireguard-go-upstream")
}
